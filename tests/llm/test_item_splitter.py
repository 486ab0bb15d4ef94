"""Items of a streamed answer are handed on when complete: never before, never twice."""

from __future__ import annotations

import json

import pytest

from ielts_service.llm.errors import InvalidOutput
from ielts_service.llm.stream import ItemSplitter
from tests.support import fake_model as fm


def test_each_item_is_handed_on_once_as_soon_as_the_next_one_starts():
    items = fm.valid_items(2, 3)
    text = json.dumps({"items": items})
    splitter, handed, seen_at = ItemSplitter(), [], []
    for i in range(0, len(text), 7):
        for item in splitter.feed(text[i:i + 7]):
            handed.append(item)
            seen_at.append(i + 7)
    handed += splitter.finish()
    assert handed == items
    opening = '{"' + next(iter(items[0]))  # how each item's text starts: its first key
    second_starts = text.index(opening, 1 + text.index(opening))
    assert seen_at[0] <= second_starts + 7  # the first came out before the rest was written


def test_a_partial_item_is_never_handed_on():
    text = json.dumps({"items": fm.valid_items(1, 2)})
    splitter = ItemSplitter()
    assert splitter.feed(text[: text.rindex('"questions"')]) == [json.loads(text)["items"][0]]
    assert splitter.feed('"questions": ["Is it') == []


def test_an_answer_that_ends_as_broken_json_is_invalid_output():
    splitter = ItemSplitter()
    splitter.feed('{"items": [{"questions": ["Do you')
    with pytest.raises(InvalidOutput):
        splitter.finish()
