"""Validation before handlers: every bad payload gets a clear envelope, never the model."""

from __future__ import annotations

import pytest

from tests.support.fake_model import FakeModel

URL = "/generate-question"


async def post_raw(client, body: bytes, content_type: str | None = "application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    return await client.post(URL, data=body, headers=headers)


async def test_post_generate_question_rejects_non_json_content_type(bank_client):
    response = await post_raw(bank_client, b"topic=travel", "application/x-www-form-urlencoded")
    body = await response.get_json()
    assert response.status_code == 415
    assert body["status"] == "error" and body["code"] == "unsupported_media_type"


@pytest.mark.parametrize("raw", [b"{", b'{"topic": }', b"\xff\xfe\x00", b'{"part": NaN}',
                                 b"[" * 5000, b'{"topic": "a"} trailing'])
async def test_post_generate_question_rejects_unparseable_json(bank_client, raw):
    response = await post_raw(bank_client, raw)
    body = await response.get_json()
    assert response.status_code == 400
    assert body == {"status": "error", "code": "invalid_json",
                    "message": "the body is not valid JSON"}


async def test_post_generate_question_rejects_body_over_the_limit(bank_client):
    response = await post_raw(bank_client, b'{"topic": "' + b"a" * 20000 + b'"}')
    body = await response.get_json()
    assert response.status_code == 413
    assert body["code"] == "payload_too_large"


async def test_post_generate_question_rejects_unknown_field(bank_client):
    response = await bank_client.post(URL, json={"topic": "travel", "level": "hard"})
    body = await response.get_json()
    assert response.status_code == 422
    assert body["code"] == "invalid_payload"
    assert body["details"] == [{"field": "level", "problem": "is not a known field"}]


@pytest.mark.parametrize(
    ("payload", "field", "problem"),
    [
        ({"part": 4}, "part", "must be 1, 2 or 3"),
        ({"part": 0}, "part", "must be 1, 2 or 3"),
        ({"part": "2"}, "part", "must be an integer"),
        ({"part": True}, "part", "must be an integer"),
        ({"part": 2.5}, "part", "must be an integer"),
        ({"topic": 7}, "topic", "must be a string"),
        ({"topic": ["travel"]}, "topic", "must be a string"),
        ({"topic": "   "}, "topic", "must not be empty"),
        ({"topic": "\u0000\u0007"}, "topic", "must not be empty"),
        ({"topic": "x" * 121}, "topic", "must be at most 120 characters"),
        ({"session_id": "has space"}, "session_id",
         "must be 1-64 characters of letters, digits, '.', '_' or '-'"),
        ({"session_id": "a" * 65}, "session_id",
         "must be 1-64 characters of letters, digits, '.', '_' or '-'"),
    ],
)
async def test_post_generate_question_rejects_bad_fields(bank_client, payload, field, problem):
    response = await bank_client.post(URL, json=payload)
    body = await response.get_json()
    assert response.status_code == 422, body
    assert body["code"] == "invalid_payload"
    assert {"field": field, "problem": problem} in body["details"]
    assert field in body["message"]


async def test_post_generate_question_names_every_bad_field(bank_client):
    response = await bank_client.post(URL, json={"part": 9, "topic": 1, "extra": 0})
    fields = {d["field"] for d in (await response.get_json())["details"]}
    assert fields == {"part", "topic", "extra"}


@pytest.mark.parametrize("raw", [b"[]", b'"travel"', b"42", b"null"])
async def test_post_generate_question_requires_a_json_object(bank_client, raw):
    response = await post_raw(bank_client, raw)
    body = await response.get_json()
    assert response.status_code == 422
    assert body["details"] == [{"field": "body", "problem": "must be a JSON object"}]


async def test_post_generate_question_accepts_an_empty_body(bank_client):
    response = await post_raw(bank_client, b"", None)
    body = await response.get_json()
    assert response.status_code == 200
    assert body["data"]["part"] == 2


async def test_topic_is_trimmed_and_stripped_of_control_characters(azure_client, fake_model):
    response = await azure_client.post(
        URL, json={"topic": "  Street\u0000 food\u202e \n markets\t", "part": 1})
    body = await response.get_json()
    assert response.status_code == 200
    assert body["data"]["topic"] == "street food markets"
    sent = fake_model.requests[0].body["messages"][1]["content"]
    assert '"street food markets"' in sent and "\u0000" not in sent and "\u202e" not in sent


async def test_get_generate_question_validates_the_query_string(bank_client):
    ok = await bank_client.get(URL, query_string={"topic": "music", "part": "3"})
    bad = await bank_client.get(URL, query_string={"part": "two", "colour": "red"})
    assert ok.status_code == 200 and (await ok.get_json())["data"]["part"] == 3
    details = (await bad.get_json())["details"]
    assert bad.status_code == 422
    assert {"field": "part", "problem": "must be an integer"} in details
    assert {"field": "colour", "problem": "is not a known field"} in details


async def test_bad_payloads_never_reach_the_model(azure_client, fake_model: FakeModel):
    for raw, content_type in [(b"{", "application/json"), (b'{"part": 5}', "application/json"),
                              (b"x", "text/plain"), (b'{"topic": "a' + b"b" * 20000, None)]:
        response = await post_raw(azure_client, raw, content_type)
        assert 400 <= response.status_code < 500
    assert fake_model.requests == []


async def test_post_generate_question_takes_a_whole_number_written_with_a_fraction(bank_client):
    """JSON Schema's integer (what /openapi.json promises) includes 2.0."""
    response = await bank_client.post(URL, json={"part": 3.0, "topic": "travel"})
    body = await response.get_json()
    assert response.status_code == 200 and body["data"]["part"] == 3
