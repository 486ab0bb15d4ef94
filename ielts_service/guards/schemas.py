"""The request models: what the validation hook enforces and what `/openapi.json` publishes.

Each constraint is written once, as a pydantic `Field`; the hook validates with these
models and the OpenAPI document is their JSON schema, so the two cannot disagree. Patterns
use JSON Schema's (and Python's) search semantics: `TOPIC_VISIBLE` asks for one character
that survives cleaning, `SESSION_ID` ends with a look-ahead rather than `$`, which in
Python would also accept a trailing newline.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ielts_service.questions.topics import clean_topic

TOPIC_MAX = 120
# One character that is neither white space nor a control or bidi-override character.
TOPIC_VISIBLE = r"[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
SESSION_ID = r"^[A-Za-z0-9._-]{1,64}(?![\s\S])"

Topic = Annotated[str, Field(
    min_length=1, max_length=TOPIC_MAX, pattern=TOPIC_VISIBLE,
    description="What to ask about, 1-120 characters as sent; control characters are removed "
                "and white space collapsed. Absent: a topic is drawn from the catalogue.",
    examples=["a memorable trip"])]
SessionId = Annotated[str, Field(
    pattern=SESSION_ID,
    description="1-64 characters of [A-Za-z0-9._-]; the same session is not served the same "
                "item twice while the pool has unseen ones.")]
Part = Annotated[int, Field(ge=1, le=3, description="1, 2 or 3")]

# The words a person reads in `details` when a field breaks one of its constraints.
PROBLEMS = {
    "extra_forbidden": "is not a known field",
    "int_type": "must be an integer",
    "string_type": "must be a string",
    "topic.string_too_short": "must not be empty",
    "topic.string_pattern_mismatch": "must not be empty",
    "topic.string_too_long": f"must be at most {TOPIC_MAX} characters",
    "session_id": "must be 1-64 characters of letters, digits, '.', '_' or '-'",
    "part": "must be 1, 2 or 3",
}


class MockTestRequest(BaseModel):
    """POST /v1/mock-test: an optional Part 2 topic and session."""

    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re",
                              title="MockTestRequest")

    topic: Topic | None = None
    session_id: SessionId | None = None

    @field_validator("topic")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return clean_topic(value) if value is not None else None


class QuestionRequest(MockTestRequest):
    """POST /generate-question, and its GET form's query string."""

    model_config = ConfigDict(title="QuestionRequest")

    part: Part = 2

    @field_validator("part", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        # JSON Schema's "integer" is any number with no fraction: 2.0 is part 2.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


def problem(field: str, error_type: str) -> str | None:
    """The words for a field's failed constraint, or None to use pydantic's own."""
    return (PROBLEMS.get(error_type) or PROBLEMS.get(f"{field}.{error_type}")
            or PROBLEMS.get(field))
