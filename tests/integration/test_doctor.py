"""`aniworldd doctor` against the look-alike site: all green on the plain site, and with each of today's
obstacles (tests/fakesite/obstacles.py) switched on alone, the failing step is the one that names it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import yaml

from aniworldd.api.system import DOCTOR_SCHEMA
from aniworldd.config import load_text
from aniworldd.services.doctor import STEP_ORDER, DoctorReport, diagnose
from tests.fakesite.obstacles import PROXY_PASSWORD, obstacle_site

WRONG_PASSWORD = "wr0ng-Passw0rd"


def make_config(tmp_path: Path, **provider) -> dict:
    """A validated config (schema defaults filled in) with fast, bounded provider settings."""
    provider.setdefault("min_interval", 0)
    provider.setdefault("retries", 0)
    provider.setdefault("timeout", 5)
    text = yaml.safe_dump({"data_dir": str(tmp_path / "data"), "provider": provider})
    return load_text(text, "config.yaml", env={}, base_dir=tmp_path)


def obstacle_config(tmp_path: Path, o, **provider) -> dict:
    """The config that answers every obstacle (DoH at the look-alike, its CA, the live names)."""
    base = {
        "aniworld_url": o.aniworld_url,
        "sto_url": o.sto_urls,
        "dns": "doh",
        "doh_urls": [o.doh_url],
        "ca_file": o.ca_file,
    }
    return make_config(tmp_path, **{**base, **provider})


def first_failure(report: DoctorReport):
    return next((step for step in report.steps if not step.ok), None)


def steps(report: DoctorReport, name: str):
    return [step for step in report.steps if step.name == name]


def assert_shape(data: dict) -> None:
    """Exactly {"ok", "steps": [{"name", "target", "ok", "detail", "hint"}]}, the steps in order."""
    assert set(data) == {"ok", "steps"}
    assert data["ok"] == all(step["ok"] for step in data["steps"])
    for step in data["steps"]:
        assert set(step) == {"name", "target", "ok", "detail", "hint"}
        assert all(isinstance(step[k], str) for k in ("name", "target", "detail", "hint"))
    order = [STEP_ORDER.index(step["name"]) for step in data["steps"]]
    assert order == sorted(order)


def assert_skipped_after(report: DoctorReport, name: str) -> None:
    """Every step after the first failure of `name` that depends on it says it was skipped."""
    later = STEP_ORDER[STEP_ORDER.index(name) + 1 :]
    for step in report.steps:
        if step.name in later and step.name != "dns":
            assert not step.ok and step.detail.startswith("skipped: "), step


# -- the plain look-alike ------------------------------------------------------------------------------


async def test_every_step_passes_against_the_plain_site(fakesite, fakesite_state, tmp_path):
    cfg = make_config(tmp_path, aniworld_url=fakesite, sto_url=fakesite)
    report = await diagnose(cfg, "config.yaml")
    data = report.to_dict()
    assert_shape(data)
    assert data["ok"], report.table()
    names = [step.name for step in report.steps]
    assert names[0] == "config" and set(names) == set(STEP_ORDER)
    assert [s.target for s in steps(report, "hoster")] == cfg["downloads"]["hosters"]
    # The sampled episodes offer VOE, Vidoza, Vidmoly and Doodstream: those really resolve (no download) ...
    resolved = {s.target for s in steps(report, "hoster") if "not offered" not in s.detail}
    assert resolved == {"VOE", "Vidoza", "Vidmoly", "Doodstream"}
    assert all("media at" in s.detail for s in steps(report, "hoster") if s.target in resolved)
    hoster_paths = [r["path"] for r in fakesite_state.request_log if r.get("hoster")]
    assert any(p.startswith("/voe/e/") for p in hoster_paths)
    assert not any(p.startswith("/media/") for p in hoster_paths)  # nothing downloaded
    # ... the others are a note, not a failure.
    note = next(s for s in steps(report, "hoster") if s.target == "Filemoon")
    assert note.ok and "not offered on the sampled episodes" in note.detail
    # A bounded sample: the first episode of each site and at most two more for the hosters.
    episode_pages = [r for r in fakesite_state.site_requests() if "/episode-" in r["path"]]
    assert 2 <= len(episode_pages) <= 6
    assert "all 21 steps passed" in report.table()


async def test_the_text_table_names_the_failing_step_with_its_fix(fakesite, fakesite_state, tmp_path):
    fakesite_state.down_hosters.add("vidoza")
    report = await diagnose(make_config(tmp_path, aniworld_url=fakesite, sto_url=fakesite), "config.yaml")
    table = report.table()
    row = next(line for line in table.splitlines() if line.startswith("FAIL"))
    assert row.split()[1:3] == ["hoster", "Vidoza"]
    fix = table.splitlines()[table.splitlines().index(row) + 1]
    assert fix.strip().startswith("fix: ") and "downloads.hosters" in fix
    assert table.rstrip().endswith("1 of 21 steps failed")


def test_the_api_schema_lists_the_step_names():
    enum = DOCTOR_SCHEMA["properties"]["steps"]["items"]["properties"]["name"]["enum"]
    assert enum == list(STEP_ORDER)


# -- each obstacle alone -------------------------------------------------------------------------------


async def test_all_obstacles_answered_by_the_config_pass(tmp_path):
    """TLS gate, DNS block and pages carrying Cloudflare's beacon + a DDoS-Guard footer: all green."""
    async with obstacle_site(tmp_path, tls_gate=True, retired=False, proxies=False, beacon=True) as o:
        report = await diagnose(obstacle_config(tmp_path, o), "config.yaml")
        assert report.ok, report.table()
        assert o.state.tls_accepted > 0 and o.state.tls_refused == 0


async def test_dns_block_fails_the_dns_step_with_the_doh_hint(tmp_path):
    async with obstacle_site(tmp_path, tls_gate=False, retired=False, proxies=False) as o:
        cfg = obstacle_config(tmp_path, o, dns="system")  # doh_urls still point at the look-alike's DoH
        report = await diagnose(cfg, "config.yaml")
    step = first_failure(report)
    assert step.name == "dns"
    assert step.detail.startswith(f"your DNS blocks {step.target}")
    assert step.hint == "set provider.dns: doh"
    assert {s.target for s in steps(report, "dns") if not s.ok} == {
        "aniworld.test",
        "serienstream.test",
        "serienstream-cx.test",
    }
    assert_skipped_after(report, "dns")


async def test_a_different_system_answer_than_doh_is_reported_as_a_block(tmp_path):
    """A CUII-style block that answers with another address: the system resolver says 127.0.0.1 for
    `localhost` (/etc/hosts), the look-alike's DoH says 127.0.0.9."""
    async with obstacle_site(tmp_path, tls_gate=False, retired=False, proxies=False) as o:
        o.state.dns_names["localhost"] = "127.0.0.9"
        cfg = obstacle_config(tmp_path, o, dns="system", aniworld_url=f"https://localhost:{o.gate_port}")
        report = await diagnose(cfg, "config.yaml")
    step = steps(report, "dns")[0]
    assert step.target == "localhost" and not step.ok
    assert "your DNS blocks localhost" in step.detail and "127.0.0.9" in step.detail
    assert step.hint == "set provider.dns: doh"


async def test_doh_down_in_doh_mode_fails_the_dns_step(tmp_path):
    async with obstacle_site(tmp_path, tls_gate=False, retired=False, proxies=False, doh=False) as o:
        report = await diagnose(obstacle_config(tmp_path, o), "config.yaml")
    step = first_failure(report)
    assert step.name == "dns" and "DNS-over-HTTPS cannot resolve" in step.detail
    assert "provider.doh_urls" in step.hint


async def test_tls_gate_fails_the_tls_step_without_impersonation(tmp_path):
    async with obstacle_site(tmp_path, tls_gate=True, retired=False, proxies=False) as o:
        report = await diagnose(obstacle_config(tmp_path, o, impersonate="off"), "config.yaml")
        assert o.state.tls_refused >= 3
    step = first_failure(report)
    assert step.name == "tcp/tls"
    assert "TLS handshake failed" in step.detail
    assert "provider.impersonate: chrome" in step.hint and "provider.ca_file" in step.hint
    assert all(not s.ok for s in steps(report, "tcp/tls"))
    assert all(s.ok for s in steps(report, "dns"))
    assert_skipped_after(report, "tcp/tls")


async def test_an_untrusted_certificate_fails_the_tls_step_with_the_ca_file_hint(tmp_path):
    async with obstacle_site(tmp_path, tls_gate=False, retired=False, proxies=False) as o:
        cfg = obstacle_config(tmp_path, o)
        cfg["provider"]["ca_file"] = None  # the look-alike's certificate comes from the tests' own CA
        cfg["provider"]["resolve"] = o.resolve  # (DoH is served by the look-alike too: pin the names)
        cfg["provider"]["dns"] = "system"
        report = await diagnose(cfg, "config.yaml")
    step = first_failure(report)
    assert step.name == "tcp/tls" and "TLS handshake failed" in step.detail, report.table()
    assert "certificate" in step.detail and step.hint.startswith("provider.ca_file")


async def test_a_certificate_for_another_name_says_so(tmp_path):
    async with obstacle_site(tmp_path, tls_gate=False, retired=False, proxies=False) as o:
        # A name pinned to the look-alike's address whose certificate does not name it.
        url = f"https://not-in-the-certificate.test:{o.gate_port}"
        cfg = obstacle_config(
            tmp_path, o, aniworld_url=url, resolve={"not-in-the-certificate.test": "127.0.0.1"}
        )
        report = await diagnose(cfg, "config.yaml")
    step = first_failure(report)
    assert (step.name, step.target) == ("tcp/tls", url), report.table()
    assert "certificate is for another name" in step.hint


async def test_js_challenge_fails_the_challenge_step_with_the_flaresolverr_hint(tmp_path):
    async with obstacle_site(tmp_path, tls_gate=False, retired=False, proxies=False, js_challenge=True) as o:
        report = await diagnose(obstacle_config(tmp_path, o), "config.yaml")
    step = first_failure(report)
    assert step.name == "challenge"
    assert "Cloudflare" in step.detail
    assert "provider.flaresolverr_url" in step.hint
    assert all(s.ok for s in steps(report, "tcp/tls"))
    assert_skipped_after(report, "challenge")


async def test_js_challenge_passes_with_flaresolverr(tmp_path):
    """Both sites' chains pass the challenge through FlareSolverr: s.to's GET pages directly, aniworld's
    POST search with the clearance FlareSolverr earned on the site's front page."""
    async with obstacle_site(
        tmp_path, tls_gate=False, retired=False, proxies=False, js_challenge=True, flaresolverr=True
    ) as o:
        cfg = obstacle_config(tmp_path, o, flaresolverr_url=o.flaresolverr_url)
        report = await diagnose(cfg, "config.yaml")
        assert o.state.clearance_passes > 0
    for name in ("challenge", "search", "series", "episode"):
        assert all(s.ok for s in steps(report, name)), report.table()
    assert all(s.ok for s in steps(report, "hoster")), report.table()


async def test_retired_address_fails_its_own_step_while_the_next_one_passes(tmp_path):
    async with obstacle_site(tmp_path, tls_gate=False, retired=True, proxies=False) as o:
        cfg = obstacle_config(tmp_path, o, sto_url=[o.retired_url, *o.sto_urls])
        report = await diagnose(cfg, "config.yaml")
    assert not report.ok
    assert [(s.name, s.target) for s in report.failed] == [("tcp/tls", o.retired_url)]
    step = report.failed[0]
    assert "connection refused" in step.detail and "fall back" in step.hint
    assert next(s for s in steps(report, "tcp/tls") if s.target == o.sto_urls[0]).ok
    # The chain goes on through the address that answers.
    sto_series = steps(report, "series")[1]
    assert sto_series.ok and sto_series.target.startswith(o.sto_urls[0])


async def test_dead_hoster_fails_its_hoster_step(tmp_path):
    async with obstacle_site(tmp_path, tls_gate=False, retired=False, proxies=False) as o:
        o.state.down_hosters.add("voe")
        report = await diagnose(obstacle_config(tmp_path, o), "config.yaml")
    assert [(s.name, s.target) for s in report.failed] == [("hoster", "VOE")]
    assert "503" in report.failed[0].detail


async def test_turnstile_on_the_redirect_fails_the_hoster_step_not_the_site(tmp_path):
    async with obstacle_site(tmp_path, tls_gate=False, retired=False, proxies=False, turnstile_after=0) as o:
        cfg = obstacle_config(tmp_path, o)
        cfg["downloads"]["hosters"] = ["VOE"]
        cfg["downloads"]["language"] = ["eng-dub"]  # s.to's English dub VOE offer is the one tried
        report = await diagnose(cfg, "config.yaml")
    assert not report.ok
    step = first_failure(report)
    assert (step.name, step.target) == ("hoster", "VOE"), report.table()
    assert "captcha" in step.detail.lower() and "human" in step.hint


async def _proxy_report(tmp_path: Path, proxy_of) -> tuple[DoctorReport, str, str, list[dict]]:
    async with obstacle_site(tmp_path, tls_gate=False, retired=False, proxies=True) as o:
        proxy = proxy_of(o)
        report = await diagnose(obstacle_config(tmp_path, o, proxy=proxy), "config.yaml")
        used = list(o.state.proxy_log)
    return report, json.dumps(report.to_dict()), report.table(), used


async def test_proxy_with_a_wrong_password_fails_and_never_shows_it(tmp_path):
    for proxy_of in (
        lambda o: o.http_proxy_auth.replace(PROXY_PASSWORD, WRONG_PASSWORD),
        lambda o: o.socks_proxy_auth_h.replace(PROXY_PASSWORD, WRONG_PASSWORD),
    ):
        report, as_json, table, _log = await _proxy_report(tmp_path, proxy_of)
        step = first_failure(report)
        assert step.name == "tcp/tls", table
        assert "proxy" in step.detail and "failed" in step.detail
        assert "provider.proxy" in step.hint
        assert "proxyuser:***@" in step.detail
        assert WRONG_PASSWORD not in as_json and WRONG_PASSWORD not in table
        assert_skipped_after(report, "tcp/tls")


async def test_proxy_with_the_right_password_passes_and_never_shows_it(tmp_path):
    report, as_json, table, used = await _proxy_report(tmp_path, lambda o: o.http_proxy_auth)
    assert report.ok, table
    assert {(e["host"], e["user"], e["ok"]) for e in used} >= {("aniworld.test", "proxyuser", True)}
    assert "proxyuser:***@" in report.steps[0].detail
    assert PROXY_PASSWORD not in as_json and PROXY_PASSWORD not in table


# -- the command ---------------------------------------------------------------------------------------


async def _cli(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aniworldd",
        "doctor",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_cli_exit_codes_and_json(fakesite, fakesite_state, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"provider:\n  aniworld_url: {fakesite}\n  sto_url: {fakesite}\n  min_interval: 0\n  timeout: 5\n"
    )
    code, out, err = await _cli("--json", "--config", str(config))
    assert code == 0, out + err
    data = json.loads(out)
    assert_shape(data)
    assert data["ok"] is True

    fakesite_state.blocked = True  # Cloudflare's "Just a moment..." on every site page
    code, out, err = await _cli("--json", "--config", str(config))
    assert code == 1, out + err
    data = json.loads(out)
    failing = next(step for step in data["steps"] if not step["ok"])
    assert failing["name"] == "challenge" and "flaresolverr_url" in failing["hint"]

    code, out, _err = await _cli("--config", str(config))  # the table
    assert code == 1
    assert any(line.startswith("FAIL  challenge") for line in out.splitlines())

    bad = tmp_path / "bad.yaml"
    bad.write_text("provider:\n  dns: carrier-pigeon\n")
    code, out, _err = await _cli("--json", "--config", str(bad))
    assert code == 1
    data = json.loads(out)
    assert data["steps"][0]["name"] == "config" and not data["steps"][0]["ok"]
    assert "provider.dns" in data["steps"][0]["detail"]
    assert all(step["detail"] == "skipped: config failed" for step in data["steps"][1:])


async def test_a_config_that_does_not_validate_never_shows_a_proxy_password(tmp_path):
    from aniworldd.services.doctor import diagnose_file

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"provider:\n  proxy: ftp://proxyuser:{WRONG_PASSWORD}@127.0.0.1:3128\n  timeout: soon\n")
    report = await diagnose_file(bad)
    assert not report.ok
    assert report.steps[0].name == "config" and "provider.timeout" in report.steps[0].detail
    assert "provider.proxy" in report.steps[0].detail
    assert WRONG_PASSWORD not in json.dumps(report.to_dict()) + report.table()
