"""Pragmas and task tags of one comment, read as the tools read them (codes, case, position)."""

from __future__ import annotations

import pytest

from codeintel.ingestion.cst.pragmas import CommentFacts, parse_comment

CASES: list[tuple[str, tuple[tuple[str, tuple[str, ...]], ...], str | None, str | None]] = [
    ("# type: ignore", (("type_ignore", ()),), None, None),
    ("#type:ignore", (("type_ignore", ()),), None, None),
    ("# type: ignore[attr-defined, misc]", (("type_ignore", ("attr-defined", "misc")),), None, None),
    ("# type: IGNORE", (), None, None),  # CPython and mypy: exact case
    ("# type: ignored", (), None, None),
    ("# type: int", (), None, None),  # a type comment, no pragma
    ("# noqa", (("noqa", ()),), None, None),
    ("#noqa", (("noqa", ()),), None, None),
    ("# NoQA", (("noqa", ()),), None, None),  # flake8 and ruff: any case
    ("# noqa:E501,W291", (("noqa", ("E501", "W291")),), None, None),
    ("# noqa: E501 W291", (("noqa", ("E501", "W291")),), None, None),
    ("# noqa E501", (("noqa", ()),), None, None),  # no colon: flake8 reads a bare noqa
    ("# noqa: E501  # noqa: W291", (("noqa", ("E501", "W291")),), None, None),
    ("# noqa: E501  # noqa", (("noqa", ()),), None, None),
    ("# flake8: noqa", (("noqa_file", ()),), None, None),
    ("# ruff: noqa: F401", (("noqa_file", ("F401",)),), None, None),
    ("# pragma: no cover", (("no_cover", ()),), None, None),
    ("#pragma:no cover", (("no_cover", ()),), None, None),
    ("# PRAGMA NO COVER", (("no_cover", ()),), None, None),
    ("# Pragma: no cover", (), None, None),  # coverage.py: pragma or PRAGMA only
    ("# pragma: no branch", (("no_branch", ()),), None, None),
    ("# pyright: ignore", (("pyright_ignore", ()),), None, None),
    ("# pyright: ignore[reportGeneralTypeIssues, reportOptionalMemberAccess]",
     (("pyright_ignore", ("reportGeneralTypeIssues", "reportOptionalMemberAccess")),), None, None),
    ("# pyright: strict", (), None, None),
    ("# fmt: off", (("fmt_off", ()),), None, None),
    ("# fmt: on", (("fmt_on", ()),), None, None),
    ("#fmt:skip", (("fmt_skip", ()),), None, None),
    ("# fmt: off for now", (), None, None),  # black: the comment must be the pragma alone
    ("# nosec", (("nosec", ()),), None, None),
    ("# nosec B602, B607", (("nosec", ("B602", "B607")),), None, None),
    ("# nosec: subprocess_popen_with_shell_equals_true", (("nosec", ("subprocess_popen_with_shell_equals_true",)),), None, None),
    ("# NOSEC", (), None, None),  # bandit: exact case
    ("# pylint: disable=W0611,unused-import", (("pylint_disable", ("W0611", "unused-import")),), None, None),
    ("# pylint:disable-next=line-too-long", (("pylint_disable_next", ("line-too-long",)),), None, None),
    ("# keep it pylint: disable=a, enable=b", (("pylint_disable", ("a",)), ("pylint_enable", ("b",))), None, None),
    ("# pylint: skip-file", (("pylint_skip_file", ()),), None, None),
    ("# type: ignore[union-attr]  # noqa: E501", (("type_ignore", ("union-attr",)), ("noqa", ("E501",))), None, None),
    ("# noqa # fmt: skip", (("noqa", ()), ("fmt_skip", ())), None, None),
    ("# TODO: fix this", (), "TODO", "fix this"),
    ("# todo(alice): later", (), "TODO", "(alice): later"),
    ("# FIXME", (), "FIXME", None),
    ("# XXX - see issue #12", (), "XXX", "see issue #12"),
    ("# HACK: around a bug  # noqa: E501", (("noqa", ("E501",)),), "HACK", "around a bug"),
    ("# noqa: E501 TODO shorten", (("noqa", ("E501",)),), "TODO", "shorten"),
    ("# type: ignore  # FIXME: remove when typed", (("type_ignore", ()),), "FIXME", "remove when typed"),
    ("# this is a TODO", (), None, None),  # only as the first word
    ("# TODOs are elsewhere", (), None, None),  # a word, not a prefix
    ("# a note  # TODO: not after plain text", (), None, None),
    ("#", (), None, None),
    ("#!/usr/bin/env python", (), None, None),
]  # fmt: skip


@pytest.mark.parametrize(("text", "pragmas", "tag", "tag_text"), CASES, ids=[c[0] for c in CASES])
def test_a_comment_gives_its_pragmas_with_codes_and_its_task_tag(
    text: str, pragmas: tuple[tuple[str, tuple[str, ...]], ...], tag: str | None, tag_text: str | None
) -> None:
    assert parse_comment(text) == CommentFacts(pragmas, tag, tag_text)  # type: ignore[arg-type]
