"""Every response is an envelope with an X-Request-ID; nothing internal leaks."""

from __future__ import annotations

import re

import pytest

from ielts_service.app import create_app


async def test_unknown_path_is_a_404_envelope(bank_client):
    response = await bank_client.get("/nope")
    assert response.status_code == 404
    assert await response.get_json() == {"status": "error", "code": "not_found",
                                         "message": "no such endpoint"}


async def test_wrong_method_is_a_405_envelope_with_allow(bank_client):
    response = await bank_client.delete("/generate-question")
    body = await response.get_json()
    assert response.status_code == 405
    assert body["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


async def test_success_is_wrapped_in_the_envelope(bank_client):
    response = await bank_client.get("/health/live")
    assert await response.get_json() == {"status": "success", "data": {"live": True}}


@pytest.mark.parametrize("incoming", ["abc-123", "A.b_c-9", "x" * 64])
async def test_well_formed_request_id_is_echoed(bank_client, incoming):
    response = await bank_client.post("/generate-question", json={"part": 9},
                                      headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 65, "semi;colon", "é"])
async def test_malformed_request_id_is_replaced(bank_client, incoming):
    response = await bank_client.get("/nope", headers={"X-Request-ID": incoming})
    replaced = response.headers["X-Request-ID"]
    assert replaced != incoming and re.fullmatch(r"[0-9a-f]{32}", replaced)


async def test_every_response_gets_a_fresh_request_id(bank_client):
    ids = {(await bank_client.get("/health/live")).headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


@pytest.mark.internal_error_expected
async def test_unhandled_exception_is_an_internal_error_envelope_without_details(
    make_settings, log_events, caplog
):
    app = create_app(make_settings())

    @app.route("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internal host db-7.internal:5432")

    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/boom")
        text = await response.get_data(as_text=True)
    assert response.status_code == 500
    assert "X-Request-ID" in response.headers
    assert '"code":"internal_error"' in text.replace(" ", "")
    assert "db-7.internal" not in text and "RuntimeError" not in text
    logged = [e for e in log_events() if e["event"] == "unhandled_exception"]
    assert len(logged) == 1 and logged[0]["request_id"] == response.headers["X-Request-ID"]
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert len(with_traceback) == 1, "the exception is logged once, not twice"


async def test_openapi_describes_every_route_and_docs_render_it(bank_client):
    spec = await (await bank_client.get("/openapi.json")).get_json()
    page = await (await bank_client.get("/docs")).get_data(as_text=True)
    assert spec["openapi"].startswith("3.1")
    assert {"/generate-question", "/v1/mock-test", "/v1/topics", "/health/ready",
            "/metrics"} <= set(spec["paths"])
    body = spec["paths"]["/generate-question"]["post"]["requestBody"]["content"]
    assert body["application/json"]["schema"]["additionalProperties"] is False
    assert "POST /generate-question" in page and "/openapi.json" in page


async def test_head_is_validated_like_get(bank_client):
    ok = await bank_client.head("/generate-question", query_string={"part": "1"})
    bad = await bank_client.head("/generate-question", query_string={"part": "9"})
    assert (ok.status_code, bad.status_code) == (200, 422)
