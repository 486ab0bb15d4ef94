"""A check for schemathesis's run against the offline bank (loaded through SCHEMATHESIS_HOOKS).

It replaces the built-in `positive_data_acceptance` there: schema-valid requests must be
accepted, except that a topic the bank has nothing on is answered `422 topic_unavailable`
with suggestions, by design. Which topics the bank holds is data, not something a schema
can say; any other 4xx to a schema-valid request still fails the run."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance


def _is_topic_unavailable(response: Any) -> bool:
    if response.status_code != 422:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return (isinstance(body, dict) and body.get("code") == "topic_unavailable"
            and bool(body.get("details"))
            and all(d.get("field") == "topic" and d.get("suggestion") for d in body["details"]))


@schemathesis.check
def positive_data_accepted_or_topic_unavailable(ctx: Any, response: Any, case: Any) -> Any:
    if _is_topic_unavailable(response):
        return None
    return positive_data_acceptance(ctx, response, case)
