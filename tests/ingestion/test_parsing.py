"""Bad source files are data: each kind of unusable file becomes one core.parse_errors row.

`parse_bytes` is checked case by case, then one real pipeline run over a repo holding every kind
of bad file checks the rows land in core.parse_errors and the run still succeeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codeintel.ingestion.parsing import ParsedFile, ParseProblem, ProblemKind, parse_bytes, read_and_parse
from codeintel.ingestion.scan import hash_bytes

MAX_SIZE = 300_000

BAD_FILES: list[tuple[str, str, bytes, ProblemKind]] = [
    ("syntax_error", "bad/syntax.py", b"def f(:\n    pass\n", ProblemKind.SYNTAX),
    ("latin1_without_cookie", "bad/latin1.py", b'name = "caf\xe9"\n', ProblemKind.ENCODING),
    ("unknown_coding_cookie", "bad/cookie.py", b"# -*- coding: klingon -*-\nx = 1\n", ProblemKind.ENCODING),
    ("binary_with_nul", "bad/binary.py", b"\x7fELF\x00\x01\x02\x00def f(): pass\n", ProblemKind.BINARY),
    ("over_the_size_limit", "bad/huge.py", b"x = 1\n" * (MAX_SIZE // 6 + 10), ProblemKind.TOO_LARGE),
    (
        "deep_sum_exhausts_ast_construction",
        "bad/deep_sum.py",
        b"x = " + b"+".join([b"1"] * 20_000) + b"\n",
        ProblemKind.RECURSION,
    ),
    ("deep_unary_exhausts_parser_stack", "bad/deep_unary.py", b"x = " + b"-" * 20_000 + b"1\n", ProblemKind.RECURSION),
    # CPython's tokenizer stops at 200 nested brackets with a SyntaxError before any recursion
    (
        "2000_nested_parentheses",
        "bad/parens.py",
        b"x = " + b"(" * 2000 + b"1" + b")" * 2000 + b"\n",
        ProblemKind.SYNTAX,
    ),
    ("5000_nested_brackets", "bad/brackets.py", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n", ProblemKind.SYNTAX),
    (
        "too_many_indentation_levels",
        "bad/indent.py",
        b"".join(b" " * i + b"if x:\n" for i in range(120)) + b" " * 120 + b"pass\n",
        ProblemKind.SYNTAX,
    ),
]

GOOD_FILES = {
    "good/ok.py": b"def ok():\n    return 1\n",
    "good/cookie.py": b'# -*- coding: latin-1 -*-\ndef cafe():\n    return "caf\xe9"\n',
    "good/bom.py": b"\xef\xbb\xbfdef with_bom():\n    return 1\n",
}


@pytest.mark.parametrize(("path", "data", "kind"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_each_bad_input_becomes_a_problem_of_its_kind(path: str, data: bytes, kind: ProblemKind) -> None:
    result = parse_bytes(path, data, MAX_SIZE)
    assert isinstance(result, ParseProblem)
    assert (result.path, result.kind) == (path, kind)
    assert result.message


def test_a_syntax_error_carries_its_line_and_column() -> None:
    result = parse_bytes("s.py", b"x = 1\ny = (\n", MAX_SIZE)
    assert isinstance(result, ParseProblem) and result.kind == ProblemKind.SYNTAX
    assert result.line is not None and result.line >= 2


def test_a_nul_byte_after_the_first_8_kib_is_still_binary() -> None:
    result = parse_bytes("late.py", b"x = 1\n" * 2000 + b"\x00\n", MAX_SIZE)
    assert isinstance(result, ParseProblem) and result.kind == ProblemKind.BINARY


@pytest.mark.parametrize("path", sorted(GOOD_FILES), ids=[Path(p).stem for p in sorted(GOOD_FILES)])
def test_good_files_parse_and_keep_their_text(path: str) -> None:
    result = parse_bytes(path, GOOD_FILES[path], MAX_SIZE)
    assert isinstance(result, ParsedFile)
    assert result.hash == hash_bytes(GOOD_FILES[path])
    assert result.lines[0].lstrip("\ufeff").startswith(("def", "#"))


def test_the_cookie_decodes_the_text_lines() -> None:
    result = parse_bytes("c.py", GOOD_FILES["good/cookie.py"], MAX_SIZE)
    assert isinstance(result, ParsedFile) and 'return "café"' in result.lines[2]


def test_a_missing_file_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    digest, result = read_and_parse(tmp_path, "nope.py", MAX_SIZE)
    assert digest is None and isinstance(result, ParseProblem) and result.kind == ProblemKind.MISSING


def test_every_bad_file_is_a_parse_error_row_after_a_real_run_and_the_run_succeeds(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    files: dict[str, str | bytes | None] = {path: data for _, path, data, _ in BAD_FILES}
    files.update(GOOD_FILES)
    repo = make_repo(tmp_path, files)
    indexer = make_indexer(repo)
    run = indexer.run(max_file_size=MAX_SIZE)
    assert run.ok and run.published
    assert {r["status"] for r in indexer.step_runs(run.run_id).values()} == {"succeeded"}
    errors = dict(indexer.query("SELECT path, kind FROM core.parse_errors"))
    assert errors == {path: str(kind) for _, path, _, kind in BAD_FILES}
    functions = {name for (name,) in indexer.query("SELECT full_name FROM docs.v_function_summary")}
    assert functions == {"good.ok.ok", "good.cookie.cafe", "good.bom.with_bom"}
    shown = dict(
        indexer.query("SELECT path, parse_error_kind FROM docs.v_module_summary WHERE parse_error_kind IS NOT NULL")
    )
    assert shown == errors
    assert indexer.query("SELECT count(*) FROM core.ast_nodes WHERE path LIKE 'bad/%'") == [(0,)]


def test_fixing_a_bad_file_clears_its_parse_error(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    repo = make_repo(tmp_path, {"m.py": "def f(:\n"})
    indexer = make_indexer(repo)
    indexer.run(["ast_ingest"])
    assert indexer.query("SELECT kind FROM core.parse_errors") == [("syntax",)]
    repo.apply({"m.py": "def f():\n    return 1\n"})
    indexer.run()
    assert indexer.query("SELECT count(*) FROM core.parse_errors") == [(0,)]
    assert indexer.query("SELECT full_name FROM docs.v_function_summary") == [("m.f",)]
