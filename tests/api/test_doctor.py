"""GET /api/system/doctor: the doctor against the running configuration, behind the API's auth."""

from __future__ import annotations

from aniworldd.services.doctor import STEP_ORDER


async def test_doctor_needs_auth(api):
    status, _body = await api.call("GET", "/api/system/doctor")
    assert status == 401


async def test_doctor_reports_every_step_and_the_failing_one(logged_in, fakesite_state):
    status, body = await logged_in.call("GET", "/api/system/doctor")
    assert status == 200, body
    assert set(body) == {"ok", "steps"}
    assert body["ok"] is True, body
    assert [s["name"] for s in body["steps"]][0] == "config"
    assert {s["name"] for s in body["steps"]} == set(STEP_ORDER)
    assert str(logged_in.ctx.config_path) == body["steps"][0]["target"]

    fakesite_state.down_hosters.add("doodstream")
    status, body = await logged_in.call("GET", "/api/system/doctor")
    assert status == 200
    assert body["ok"] is False
    failed = [(s["name"], s["target"]) for s in body["steps"] if not s["ok"]]
    assert failed == [("hoster", "Doodstream")]
    assert next(s for s in body["steps"] if not s["ok"])["hint"]


async def test_doctor_is_in_the_openapi_document(logged_in):
    status, spec = await logged_in.call("GET", "/api/openapi.json")
    assert status == 200
    op = spec["paths"]["/api/system/doctor"]["get"]
    assert "security" in op and "401" in op["responses"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["ok", "steps"]
    assert schema["properties"]["steps"]["items"]["required"] == ["name", "target", "ok", "detail", "hint"]
