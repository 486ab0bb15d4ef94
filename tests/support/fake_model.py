"""A real HTTP server standing in for Azure OpenAI / OpenAI chat completions.

Tests program it with scripted replies (``ok``, ``status``, ``slow``, ``drop``,
``raw`` ...), or with replies built from each request (``respond``, ``echo_topic``), and
inspect what it received through ``FakeModel.requests``. This module is the one name tests
use; the parts: fake_items (what it writes), fake_replies (what it can be told to answer,
and the request it records), fake_server (the server), fake_stream (streamed answers).
"""

from __future__ import annotations

from tests.support.fake_items import invalid_items, valid_items
from tests.support.fake_replies import (
    CONTENT_FILTER_BODY,
    TOPIC_MARK,
    Drop,
    Ok,
    Raw,
    Recorded,
    Reply,
    Respond,
    Slow,
    Status,
    content_filter_400,
    content_filter_finish,
    drop,
    echo_topic,
    echoed,
    ok,
    quoted_topic,
    raw,
    respond,
    slow,
    status,
)
from tests.support.fake_server import FakeModel

__all__ = ["CONTENT_FILTER_BODY", "TOPIC_MARK", "Drop", "FakeModel", "Ok", "Raw", "Recorded",
           "Reply", "Respond", "Slow", "Status", "content_filter_400", "content_filter_finish",
           "drop", "echo_topic", "echoed", "invalid_items", "ok", "quoted_topic", "raw",
           "respond", "slow", "status", "valid_items"]
