# aniworldd — the two commands: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# `make run` runs with data/config.yaml, copied from config.example.yaml on first start (contrib/first_config.py):
# settings saved from the web UI go into that copy, never into the tracked example. CONFIG=FILE: your own file.
CONFIG ?= data/config.yaml
# `make demo`: its config is copied once into its data folder (the copy's data_dir is `.`), ports overridable.
DEMO_DIR ?= contrib/demo/demo-data
DEMO_PORT ?= 8080
FAKESITE_PORT ?= 8090
# Debian packages the test suite drives for real (broker, media tools, browser, systemd headers).
TEST_DEBS := mosquitto ffmpeg chromium libsystemd-dev pkg-config
# packaging tests: systemd-analyze verify, the contrib/ reverse proxies run for real, a throwaway TLS cert
TEST_DEBS += systemd nginx-light caddy openssl
# the real FlareSolverr (PyPI `flaresolverr`, own venv) runs Debian's chromium under Xvfb
TEST_DEBS += xvfb
# more than one process (tests/cluster): the real servers, started by `make services`
TEST_DEBS += postgresql redis-server
FLARESOLVERR_VENV := .venv-flaresolverr

.PHONY: run test lint format demo bench clean debs services

$(BIN)/python:
	@# Debian ships venv/ensurepip separately (python3-venv); install it when we can.
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; } || true
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,postgres]'
	@# systemd-python is optional at run time; it builds only where libsystemd-dev is present.
	-$(BIN)/pip install -q systemd-python 2>/dev/null || echo "systemd-python not built (libsystemd-dev missing): journald tests use the fallback"
	@touch $@ $(VENV)/.installed

# First start: the user's own copy of an example (an existing file is left alone; paths rebased to its folder).
data/config.yaml: | $(VENV)/.installed
	$(BIN)/python contrib/first_config.py config.example.yaml $@

$(DEMO_DIR)/config.yaml: | $(VENV)/.installed
	$(BIN)/python contrib/first_config.py contrib/demo/config.demo.yaml $@

run: $(VENV)/.installed $(CONFIG)
	$(BIN)/aniworldd run --config $(CONFIG)

# contrib/apt-install-quiet.sh: the packages' services (nginx, caddy, mosquitto, postgresql, redis) are neither
# started nor left enabled at boot; the tests start their own (PostgreSQL and Redis: `make services`).
debs:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && sh contrib/apt-install-quiet.sh $$missing; \
	  else echo "missing Debian packages (run as root to install):$$missing"; fi; \
	fi

# PostgreSQL on 127.0.0.1:5432 (user postgres, no password) and redis-server on 127.0.0.1:6379 for the cluster
# tests: what answers is left alone; as root the installed but stopped servers are started
# (contrib/test-services.sh). Not root: a note, and those tests skip.
services: debs
	@sh contrib/test-services.sh

# FlareSolverr has its own dependency pins (an old requests, DrissionPage): kept out of the project's venv.
$(FLARESOLVERR_VENV)/.installed: | $(BIN)/python
	$(PYTHON) -m venv $(FLARESOLVERR_VENV)
	$(FLARESOLVERR_VENV)/bin/pip install -q flaresolverr==3.3.21rc4.post3
	@touch $@

test: services $(VENV)/.installed-test $(FLARESOLVERR_VENV)/.installed
	AW_FLARESOLVERR_PYTHON=$(CURDIR)/$(FLARESOLVERR_VENV)/bin/python $(BIN)/pytest -q -p no:cacheprovider

lint: $(VENV)/.installed-test
	$(BIN)/ruff check aniworldd tests bench
	$(BIN)/ruff format --check aniworldd tests bench

format: $(VENV)/.installed-test
	$(BIN)/ruff format aniworldd tests bench
	$(BIN)/ruff check --fix aniworldd tests bench

# The daemon against a local look-alike of aniworld.to / s.to and the hosters: no internet needed.
# run_demo.py supervises both and stops both on SIGTERM/SIGINT (exec: it is make's child, which gets the TERM).
demo: $(VENV)/.installed-test $(DEMO_DIR)/config.yaml
	@echo "fake sites + hosters on http://127.0.0.1:$(FAKESITE_PORT), aniworldd on http://127.0.0.1:$(DEMO_PORT) (Ctrl-C stops both)"
	@exec $(BIN)/python contrib/demo/run_demo.py --fake-port $(FAKESITE_PORT) --port $(DEMO_PORT) \
	  --config $(DEMO_DIR)/config.yaml

clean:
	rm -rf $(VENV) $(FLARESOLVERR_VENV) build dist *.egg-info .pytest_cache tests/artifacts
