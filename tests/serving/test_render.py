"""Rendering answers: within the budget, whole rows, a shorter rendering first, cursors bound to
their snapshot and call, the same bytes every time."""

from __future__ import annotations

import json

import pytest

from codeintel.serving.render import (
    Answer,
    CursorError,
    Section,
    args_signature,
    decode_cursor,
    encode_cursor,
    render,
    round_float,
    tokens,
)

HEAD = ["snapshot repo@0123456789ab built 2024-01-01T00:00:00Z run 0123456789abcdef"]


def _answer(rows: int, width: int = 40) -> Answer:
    table = [(i, f"name_{i}_" + "x" * width, i * 0.123456789, "extra " * 5) for i in range(rows)]
    section = Section("items", ("n", "name", "score", "detail"), table, total=rows + 100, brief=("n", "name"), pageable=True)
    return Answer("items", [("count", rows)], [section], ["a note"])


def _cursor(offset: int) -> str:
    return encode_cursor("run1", "tool", "sig", offset)


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("budget", [200, 500, 2000, 8000])
def test_an_answer_never_exceeds_its_budget_and_keeps_rows_whole(fmt: str, budget: int) -> None:
    answer = _answer(200)
    text = render(answer, HEAD, fmt, budget, _cursor)
    assert tokens(text) <= budget
    assert text.startswith(HEAD[0]) if fmt == "text" else json.loads(text)["snapshot"] == HEAD[0]
    if fmt == "json":
        section = json.loads(text)["sections"][0]
        assert all(len(row) == len(section["columns"]) for row in section["rows"])
        assert section["next_cursor"] == _cursor(len(section["rows"]))
    else:
        rows = [line for line in text.splitlines() if line[:1].isdigit()]
        assert all(line.count(" | ") == rows[0].count(" | ") for line in rows)
        assert f'next: cursor="{_cursor(len(rows))}"' in text


def test_a_shorter_rendering_is_chosen_before_rows_are_dropped_and_the_answer_says_so() -> None:
    answer = _answer(20)
    full = render(answer, HEAD, "text", 8000, _cursor)
    assert "score" in full and "brief rendering" not in full
    budget = tokens(full) - 50
    brief = render(answer, HEAD, "text", budget, _cursor)
    assert "n | name" in brief and "score" not in brief.split("items: ")[1].splitlines()[1]
    assert "brief rendering, left out score, detail" in brief
    assert sum(1 for line in brief.splitlines() if line.startswith(tuple("0123456789"))) == 20
    tiny = render(answer, HEAD, "text", 200, _cursor)
    assert "rows were left out to stay within the token budget" in tiny


def test_the_same_answer_renders_to_the_same_bytes_and_floats_are_rounded() -> None:
    assert render(_answer(30), HEAD, "text", 2000, _cursor) == render(_answer(30), HEAD, "text", 2000, _cursor)
    assert round_float(0.1 + 0.2) == 0.3 and round_float(1 / 3) == 0.3333
    text = render(_answer(3), HEAD, "json", 2000, _cursor)
    assert json.loads(text)["sections"][0]["rows"][1][2] == 0.1235


def test_an_overlong_value_is_shortened_and_marked_never_a_row() -> None:
    answer = Answer("t", [], [Section("s", ("v",), [("y" * 5000,), ("short",)])])
    text = render(answer, HEAD, "text", 8000)
    assert "…(+" in text and "short" in text


def test_a_cursor_pages_only_its_own_call_on_its_own_snapshot() -> None:
    sig = args_signature("hotspots", {"metric": "size", "limit": 5, "format": "json"})
    assert sig == args_signature("hotspots", {"metric": "size", "limit": 50, "format": "text", "max_tokens": 900})
    cursor = encode_cursor("runA", "hotspots", sig, 40)
    assert decode_cursor(cursor, "runA", "hotspots", sig) == 40
    with pytest.raises(CursorError, match=r"stale cursor.*runA.*runB"):
        decode_cursor(cursor, "runB", "hotspots", sig)
    with pytest.raises(CursorError, match="another call"):
        decode_cursor(cursor, "runA", "hotspots", args_signature("hotspots", {"metric": "complexity"}))
    with pytest.raises(CursorError, match="not one this server gave out"):
        decode_cursor("garbage!", "runA", "hotspots", sig)
