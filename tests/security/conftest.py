"""Fixtures the fault and attack suite shares with the other suites: the API on a real store and config
file (tests/api), and a download environment against the look-alike site (tests/integration)."""

from tests.api.conftest import api, api_factory, logged_in  # noqa: F401 - fixtures
from tests.integration.test_download_service import make_env  # noqa: F401 - fixture
