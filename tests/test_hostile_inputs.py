"""Hostile inputs: one bad file costs one row, never a step or the whole database.

Every test exports a real git repository made in tmp_path (in-process `Indexer`, the real CLI
in-process through `codeintel.cli.main`, or `python -m codeintel export` in a subprocess where
the test needs a process of its own).  Beside each bad file sits a small good package (`GOOD`:
an import and a call), and every test checks that the export succeeded and published, that the
good package is fully indexed (definitions, metrics, import edge, call edge) and that the bad
file is exactly the row it should be: a `core.parse_errors` row of the right kind, or a
`core.files` skip reason.

Classes, in order: undecodable or unparsable content (one table); valid but odd text (coding
cookies, BOM, line breaks: compared with a plain twin of the same code); lone surrogates in
literals; syntax newer than the running Python; hostile paths (spaces, non-ASCII, non-UTF-8
names); symlinks, directories and FIFOs where files were; files that vanish, turn into FIFOs
or cannot be read; extractors that raise (serial, process pool, Dask); a failing whole-program
step; and a `--db` that is not a CodeIntel database.

The content classes, and the serial extractor failures, each share one export (`exported`): a
file per case, a test per case; everything else exports a repository of its own.  Serial
executor unless the test is about executors: the whole file takes about a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pytest

from codeintel.cli import main
from codeintel.errors import StepFailedError
from codeintel.ingestion import filework
from codeintel.orchestration import steps
from codeintel.orchestration.steps import PIPELINE_STEPS, PipelineRun
from codeintel.storage.text import fs_path

Indexer = Any  # tests/conftest.py `Indexer` (conftest is not importable as a module)
MakeRepo = Any
MakeIndexer = Any

RUNNING = sys.version_info[:2]
ALL_STEPS = [step.name for step in PIPELINE_STEPS]

# ------------------------------------------------------------------------------------ helpers

GOOD: dict[str, str | bytes | None] = {
    "good/__init__.py": "",
    "good/helpers.py": '''
        """Helpers."""


        def helper(x):
            return x + 1
        ''',
    "good/user.py": """
        from good.helpers import helper


        def use():
            return helper(1)
        """,
}

# tables of the per-file steps, by step (what a failing extractor leaves empty for its file)
STEP_TABLES = {
    "ast_ingest": "core.ast_nodes",
    "function_metrics": "analytics.function_metrics",
    "import_graph": "graph.import_sites",
    "call_graph": "graph.call_facts",
}


def with_good(files: Mapping[str, str | bytes | None]) -> dict[str, str | bytes | None]:
    return {**GOOD, **files}


def assert_good_indexed(idx: Indexer) -> None:
    """The good package is fully indexed: definitions, metrics, the import and the resolved call."""
    goids = dict(idx.query("SELECT module || '.' || qualname, goid FROM core.goids WHERE path LIKE 'good/%'"))
    assert {"good.helpers.helper", "good.user.use"} <= set(goids), goids
    metrics = dict(idx.query("SELECT module || '.' || qualname, cyclomatic FROM analytics.function_metrics"))
    assert metrics.get("good.helpers.helper") == 1 and metrics.get("good.user.use") == 1, metrics
    imports = idx.query(
        "SELECT src_module, dst_module, target_kind FROM graph.import_edges WHERE src_path = 'good/user.py'"
    )
    assert ("good.user", "good.helpers", "internal") in imports
    calls = idx.query(
        "SELECT caller, callee, caller_goid, callee_goid FROM graph.call_edges WHERE path = 'good/user.py'"
    )
    assert ("good.user.use", "good.helpers.helper", goids["good.user.use"], goids["good.helpers.helper"]) in calls
    assert idx.query("SELECT count(*) FROM core.parse_errors WHERE path LIKE 'good/%'") == [(0,)]
    functions = {f for (f,) in idx.query("SELECT full_name FROM docs.v_function_summary")}
    assert {"good.helpers.helper", "good.user.use"} <= functions


def export(idx: Indexer, **config: Any) -> PipelineRun:
    """Run the whole pipeline (serial unless `config` says otherwise); it must succeed and publish."""
    run = idx.run(**config)
    assert run.ok and run.published, run.failed
    assert_steps_succeeded(idx, run.run_id)
    return run


def assert_steps_succeeded(idx: Indexer, run_id: str | None = None) -> None:
    """Every step of the run (default: the last one) succeeded, in the published ledger."""
    if run_id is None:
        ((run_id,),) = idx.query("SELECT run_id FROM meta.pipeline_runs ORDER BY started_at DESC LIMIT 1")
    status = dict(idx.query("SELECT step, status FROM meta.step_runs WHERE run_id = ?", [run_id]))
    assert set(status) == set(ALL_STEPS), status
    # a step whose tool has nothing to work on (git history outside a git repository) is skipped
    assert all(s == "succeeded" or (s == "skipped" and step == "git_history") for step, s in status.items()), status


def errors_of(idx: Indexer, path: str) -> list[dict[str, Any]]:
    """The core.parse_errors rows of `path` (as stored), as dicts."""
    cols = ("step", "kind", "line", "col", "message", "error_type", "needs_python")
    rows = idx.query(f"SELECT {', '.join(cols)} FROM core.parse_errors WHERE path = ? ORDER BY step", [path])
    return [dict(zip(cols, row, strict=True)) for row in rows]


def rows_of(idx: Indexer, path: str) -> dict[str, int]:
    """How many rows `path` has in each per-file step's table."""
    return {
        step: idx.query(
            f"SELECT count(*) FROM {table} WHERE {'src_path' if 'import' in table else 'path'} = ?", [path]
        )[0][0]
        for step, table in STEP_TABLES.items()
    }


def file_row(idx: Indexer, path: str) -> tuple[Any, ...] | None:
    """(module, hash is set, skip_reason) of `path` in core.files, or None."""
    found = idx.query("SELECT module, hash IS NOT NULL, skip_reason FROM core.files WHERE path = ?", [path])
    return found[0] if found else None


_EXPORTED: dict[str, tuple[Path, Path] | str] = {}  # key -> (repo, db), or why not


@pytest.fixture
def exported(
    make_repo: MakeRepo, make_indexer: MakeIndexer, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Indexer]:
    """`exported(key, files, during=None)` -> an Indexer on one export shared by the tests of `key`.

    The first test asking for `key` commits `files` to a new git repository and exports it
    (`during(monkeypatch)` first patches what the export should run with); the others read the
    same published database.  Each test still checks its own file, and with all of them in one
    repository also that no bad file disturbs another or the good package.
    """

    def get(
        key: str, files: Mapping[str, str | bytes | None], during: Callable[[pytest.MonkeyPatch], None] | None = None
    ) -> Indexer:
        if key not in _EXPORTED:
            base = tmp_path_factory.mktemp(key)
            repo = make_repo(base, files)
            idx = make_indexer(repo, base / "db" / "codeintel.duckdb")
            _EXPORTED[key] = f"the shared export {key!r} failed in an earlier test"  # fail fast from now on
            with pytest.MonkeyPatch.context() as patch:
                if during is not None:
                    during(patch)
                export(idx)
            _EXPORTED[key] = (repo.root, idx.db)
        found = _EXPORTED[key]
        if isinstance(found, str):
            pytest.fail(found)
        return make_indexer(*found)

    return get


def cli(*args: str | Path) -> int:
    return main([str(a) for a in args])


def subprocess_export(
    repo: Path, db: Path, *extra: str, env: Mapping[str, str] | None = None, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m codeintel export REPO --db DB --quiet ...` in a process of its own."""
    command = [
        *(prefix or []),
        sys.executable,
        "-m",
        "codeintel",
        "export",
        str(repo),
        "--db",
        str(db),
        "--quiet",
        *extra,
    ]
    base = {k: v for k, v in os.environ.items() if not k.startswith("CODEINTEL_")}
    return subprocess.run(
        command, env={**base, **(env or {})}, capture_output=True, text=True, timeout=300, check=False
    )


# ---------------------------------------------------- content: one repository, one export, a test each

UNPARSABLE = [
    ("invalid_utf8_in_a_literal", b'NAME = "caf\xe9"\n', {"encoding"}),
    # a lone surrogate written into the file (not as an escape) is invalid UTF-8 wherever it is;
    # ast.parse lets undecodable comments pass, but Python refuses to run such a file, and so do we
    ("encoded_surrogate_in_a_comment", b"# \xed\xb3\xa2\nX = 1\n", {"encoding"}),
    ("invalid_utf8_in_a_later_comment", b"X = 1\n\n# caf\xe9\n", {"encoding"}),
    ("encoded_surrogate_in_an_identifier", b"caf\xed\xb3\xa2 = 1\n", {"encoding"}),
    ("bom_contradicting_a_latin1_cookie", b"\xef\xbb\xbf# coding: latin-1\nX = 1\n", {"encoding"}),
    ("unknown_coding_cookie", b"# coding: klingon\nX = 1\n", {"encoding"}),
    ("nul_bytes", b"X = 1\n\0\0\nY = 2\n", {"binary"}),
    # the tokenizer's 200-level limit: "too many nested parentheses" (syntax) on 3.11 and 3.13
    ("parentheses_300_deep", b"X = " + b"(" * 300 + b"1" + b")" * 300 + b"\n", {"syntax", "recursion"}),
    # a left-deep tree 100,000 levels deep: the parser's recursion limit (recursion, 3.11 and 3.13)
    ("expression_of_100000_terms", b"X = " + b" + ".join([b"1"] * 100_000) + b"\n", {"recursion"}),
    ("a_real_syntax_error", b"def broken(:\n    pass\n", {"syntax"}),
]

TWIN = '''\
# -*- coding: {encoding} -*-
"""Module café façade."""
from good.helpers import helper

TEXT = "{literal}"


def brew(cup):
    """Brew café façade."""
    # a comment{comment}
    if cup:
        return helper(cup)
    return None
'''
BREW_CALL_LINE = 12


def _twin(encoding: str = "utf-8", literal: str = "abc", comment: str = "", newline: str = "\n") -> str:
    return TWIN.format(encoding=encoding, literal=literal, comment=comment).replace("\n", newline)


ODD_TEXT = [
    ("latin1_coding_cookie", _twin("latin-1").encode("latin-1")),
    ("cp1252_coding_cookie", _twin("cp1252").encode("cp1252")),
    ("utf8_bom", b"\xef\xbb\xbf" + _twin().encode()),
    ("crlf_line_breaks", _twin(newline="\r\n").encode()),
    ("cr_line_breaks", _twin(newline="\r").encode()),
    # characters str.splitlines() breaks lines at and Python does not: no line may shift
    (
        "line_separators_in_a_literal_and_a_comment",
        _twin(literal="a\u2028b\x0cc\x85d\x1ce", comment=" \u2029 \x0b").encode(),
    ),
]

# raw: the file holds the escapes; the parsed strings hold lone surrogates
SURROGATES = r'''
"""Module \udce2 docstring."""
from good.helpers import helper

__all__ = ["brew", "\udce2", "\ud800x"]
TEXT = "\udce2\udfff"  # \udce2 in a comment is only the escape's text


@helper("\udce2")
def brew():
    """Brew \udce2 now."""
    return helper("\udce2").upper()
'''

NEWER = [
    (
        "pep695_type_statement_and_generics",
        (3, 12),
        "type Pair = tuple[int, int]\n\n\ndef first[T](xs: list[T]) -> T:\n    return xs[0]\n\n\n"
        "class Box[T]:\n    def get(self) -> T:\n        return self.item\n",
    ),
    ("pep696_type_parameter_default", (3, 13), "def first[T = int](xs: list[T]) -> T:\n    return xs[0]\n"),
    ("pep701_nested_quotes_in_an_f_string", (3, 12), 'def first(xs):\n    return f"{xs["a"]}"\n'),
    ("pep750_template_string", (3, 14), 'def first(xs):\n    return t"{xs}"\n'),
    (
        "pep758_unparenthesised_except",
        (3, 14),
        "def first(xs):\n    try:\n        return xs[0]\n    except IndexError, KeyError:\n        return None\n",
    ),
]

CONTENT: dict[str, str | bytes | None] = {
    **GOOD,
    **{f"bad/{name}.py": data for name, data, _ in UNPARSABLE},
    **{f"odd/{name}.py": data for name, data in ODD_TEXT},
    "odd/twin.py": _twin().encode(),
    **{f"newer/{name}.py": source for name, _, source in NEWER},
    "sur.py": SURROGATES,
}


@pytest.fixture
def content(exported: Callable[..., Indexer]) -> Indexer:
    """One export of every content case above, each in its own file beside `GOOD`."""
    return exported("content", CONTENT)


@pytest.mark.parametrize(("name", "kinds"), [(c[0], c[2]) for c in UNPARSABLE], ids=[c[0] for c in UNPARSABLE])
def test_a_file_that_cannot_be_parsed_is_one_row_of_its_kind(content: Indexer, name: str, kinds: set[str]) -> None:
    path, module = f"bad/{name}.py", f"bad.{name}"
    (error,) = errors_of(content, path)
    assert error["step"] == "ast_ingest" and error["kind"] in kinds, error
    assert error["message"] and error["error_type"] is None and error["needs_python"] is None
    assert error["line"] is None or (error["line"] >= 1 and error["col"] >= 1), "a position, or none"
    assert file_row(content, path) == (module, True, None), "the file itself was scanned and hashed"
    assert rows_of(content, path) == dict.fromkeys(STEP_TABLES, 0)
    shown = content.query("SELECT parse_error_kind FROM docs.v_module_summary WHERE module = ?", [module])
    assert shown == [(error["kind"],)]
    assert_good_indexed(content)


_DEF_COLUMNS = (
    "if(kind = 'module', '', qualname) AS name, kind, start_line, end_line, start_col, end_col, def_line, docstring"
)
_METRIC_COLUMNS = "qualname AS name, loc, lloc, sloc, comment_lines, blank_lines, docstring_lines, cyclomatic"


@pytest.mark.parametrize("name", [c[0] for c in ODD_TEXT], ids=[c[0] for c in ODD_TEXT])
def test_valid_but_odd_text_is_indexed_exactly_like_its_plain_twin(content: Indexer, name: str) -> None:
    path, module = f"odd/{name}.py", f"odd.{name}"
    assert errors_of(content, path) == []
    for columns, table in ((_DEF_COLUMNS, "core.ast_nodes"), (_METRIC_COLUMNS, "analytics.function_metrics")):
        odd = content.query(f"SELECT {columns} FROM {table} WHERE path = ? ORDER BY name", [path])
        twin = content.query(f"SELECT {columns} FROM {table} WHERE path = 'odd/twin.py' ORDER BY name")
        assert odd == twin and odd, table
    docs = dict(content.query("SELECT kind, docstring FROM core.ast_nodes WHERE path = ?", [path]))
    assert docs == {"module": "Module café façade.", "function": "Brew café façade."}
    edges = content.query("SELECT dst_module, target_kind FROM graph.import_edges WHERE src_path = ?", [path])
    assert edges == [("good.helpers", "internal")]
    calls = content.query("SELECT caller, callee, line FROM graph.call_edges WHERE path = ?", [path])
    assert calls == [(f"{module}.brew", "good.helpers.helper", BREW_CALL_LINE)]
    assert_good_indexed(content)


def _stored(text: str) -> str:
    """How text with lone surrogates is stored: each one as its Python escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def test_lone_surrogates_in_string_literals_are_stored_escaped(content: Indexer) -> None:
    assert errors_of(content, "sur.py") == []
    docs = dict(content.query("SELECT kind, docstring FROM core.ast_nodes WHERE path = 'sur.py'"))
    assert docs == {"module": "Module \\udce2 docstring.", "function": "Brew \\udce2 now."}
    assert docs["function"] == _stored("Brew \udce2 now.")
    exports = content.query("SELECT all_names FROM graph.module_exports WHERE path = 'sur.py'")
    assert exports == [(["brew", "\\udce2", "\\ud800x"],)]
    metrics = content.query("SELECT has_docstring, cyclomatic FROM analytics.function_metrics WHERE path = 'sur.py'")
    assert metrics == [(True, 1)]
    callees = {c for (c,) in content.query("SELECT callee FROM graph.call_edges WHERE caller = 'sur.brew'")}
    assert "good.helpers.helper" in callees
    assert_good_indexed(content)


@pytest.mark.parametrize(("name", "needs"), [c[:2] for c in NEWER], ids=[c[0] for c in NEWER])
def test_syntax_of_a_newer_python_is_unsupported_syntax_or_indexed(
    content: Indexer, name: str, needs: tuple[int, int]
) -> None:
    path = f"newer/{name}.py"
    functions = {q for (q,) in content.query("SELECT qualname FROM analytics.function_metrics WHERE path = ?", [path])}
    if needs <= RUNNING:
        assert errors_of(content, path) == []
        assert "first" in functions
    else:
        (error,) = errors_of(content, path)
        dotted = f"{needs[0]}.{needs[1]}"
        assert (error["step"], error["kind"], error["needs_python"]) == ("ast_ingest", "unsupported_syntax", dotted)
        assert f"Python {dotted}" in error["message"] and error["line"]
        assert functions == set()
    assert_good_indexed(content)


# ---------------------------------------------------------------------------------- hostile paths


def test_spaces_and_non_ascii_characters_in_paths_are_indexed_under_their_module_names(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer
) -> None:
    files = {
        "pkg_ü/__init__.py": "",
        "pkg_ü/naïve.py": "def grüß(x):\n    return x\n",
        "pkg_ü/user.py": "from pkg_ü.naïve import grüß\n\n\ndef use():\n    return grüß(1)\n",
        "with space/mod one.py": "from good.helpers import helper\n\n\ndef spaced():\n    return helper(2)\n",
        "日本/模块.py": "def 函数():\n    return 1\n",
    }
    repo = make_repo(tmp_path, with_good(files))
    idx = make_indexer(repo)
    export(idx)
    modules = dict(idx.query("SELECT path, module FROM core.modules"))
    assert {p: modules[p] for p in files} == {
        "pkg_ü/__init__.py": "pkg_ü",
        "pkg_ü/naïve.py": "pkg_ü.naïve",
        "pkg_ü/user.py": "pkg_ü.user",
        "with space/mod one.py": "with space.mod one",
        "日本/模块.py": "日本.模块",
    }
    qualnames = {q for (q,) in idx.query("SELECT module || '.' || qualname FROM analytics.function_metrics")}
    assert {"pkg_ü.naïve.grüß", "pkg_ü.user.use", "with space.mod one.spaced", "日本.模块.函数"} <= qualnames
    edges = idx.query("SELECT src_module, dst_module, target_kind FROM graph.import_edges")
    assert ("pkg_ü.user", "pkg_ü.naïve", "internal") in edges
    calls = idx.query("SELECT caller, callee FROM graph.call_edges WHERE callee_goid IS NOT NULL")
    assert {("pkg_ü.user.use", "pkg_ü.naïve.grüß"), ("with space.mod one.spaced", "good.helpers.helper")} <= set(calls)
    assert idx.query("SELECT count(*) FROM core.parse_errors") == [(0,)]
    assert_good_indexed(idx)


def test_a_non_utf8_file_name_is_stored_escaped_and_fully_indexed(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer
) -> None:
    cafe = os.fsdecode(b"caf\xe9.py")  # the name git gives back: 0xE9 as the surrogate \udce9
    depot = os.fsdecode(b"d\xe9p\xf4t")  # a package directory, not UTF-8 either
    files = {
        cafe: "from good.helpers import helper\n\n\ndef brew():\n    return helper(3)\n",
        f"{depot}/__init__.py": "from .stock import stock\n",
        f"{depot}/stock.py": "def stock():\n    return 1\n",
    }
    repo = make_repo(tmp_path, with_good(files))
    assert os.fsencode(cafe) in os.listdir(os.fsencode(repo.root)), "the file system took the raw bytes"
    idx = make_indexer(repo)
    export(idx)
    stored_cafe, stored_init = "caf\\udce9.py", "d\\udce9p\\udcf4t/__init__.py"
    assert fs_path(stored_cafe) == cafe and fs_path(stored_init) == f"{depot}/__init__.py"
    assert file_row(idx, stored_cafe) == ("caf\\udce9", True, None)
    assert file_row(idx, stored_init) == ("d\\udce9p\\udcf4t", True, None)
    # pyrefly's config is TOML, which cannot name a non-UTF-8 file: scip_ingest's one row, every other step indexes it
    assert [(e["step"], e["kind"]) for e in errors_of(idx, stored_cafe)] == [("scip_ingest", "not_indexed")]
    goids = dict(idx.query("SELECT module || '.' || qualname, path FROM core.goids WHERE kind = 'function'"))
    assert goids["caf\\udce9.brew"] == stored_cafe
    assert goids["d\\udce9p\\udcf4t.stock.stock"] == "d\\udce9p\\udcf4t/stock.py"
    assert idx.query("SELECT cyclomatic FROM analytics.function_metrics WHERE path = ?", [stored_cafe]) == [(1,)]
    edges = idx.query("SELECT src_module, dst_module, target_kind FROM graph.import_edges")
    assert ("caf\\udce9", "good.helpers", "internal") in edges
    assert ("d\\udce9p\\udcf4t", "d\\udce9p\\udcf4t.stock", "internal") in edges  # relative import resolved
    calls = idx.query(
        "SELECT caller, callee FROM graph.call_edges WHERE path = ? AND callee_goid IS NOT NULL", [stored_cafe]
    )
    assert calls == [("caf\\udce9.brew", "good.helpers.helper")]
    assert_good_indexed(idx)
    again = export(idx)  # the escaped paths are stable keys: nothing to redo
    assert again.results["ast_ingest"].files_processed == 0


# ------------------------------------------------------------- what is not a readable regular file


def _commit_symlinks(repo: Any, use_git: bool) -> None:
    root = repo.root
    (root / "loop_a.py").symlink_to("loop_b.py")  # a -> b -> a
    (root / "loop_b.py").symlink_to("loop_a.py")
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (root / "pkg" / "parent").symlink_to("..", target_is_directory=True)  # a directory pointing to its parent
    (root / "up.py").symlink_to(".", target_is_directory=True)  # ... and one whose name looks like a module
    (root / "alias.py").symlink_to("good/helpers.py")  # a symlink to a good file is still a symlink
    if use_git:
        repo.commit("symlinks")


@pytest.mark.parametrize("use_git", [True, False], ids=["git", "plain_walk"])
def test_symlink_loops_and_symlinked_directories_are_skipped_and_never_followed(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer, use_git: bool
) -> None:
    repo = make_repo(tmp_path, GOOD, use_git=use_git)
    _commit_symlinks(repo, use_git)
    idx = make_indexer(repo)
    export(idx)
    paths = {p for (p,) in idx.query("SELECT path FROM core.files")}
    assert not {p for p in paths if p.startswith(("pkg/parent/", "up.py/"))}, "a symlinked directory was followed"
    skipped = dict(idx.query("SELECT path, skip_reason FROM core.files WHERE skip_reason IS NOT NULL"))
    expected = dict.fromkeys(["loop_a.py", "loop_b.py", "up.py", "alias.py"], "symlink")
    if not use_git:
        expected["pkg/parent"] = "symlink"  # git lists only *.py paths; the walk records linked dirs
    assert skipped == expected
    assert idx.query("SELECT count(*) FROM core.parse_errors") == [(0,)]
    state = {p for (p,) in idx.query("SELECT path FROM core.file_state")}
    assert state == {"good/__init__.py", "good/helpers.py", "good/user.py", "pkg/__init__.py"}
    assert_good_indexed(idx)


def test_a_directory_or_a_fifo_where_git_has_a_file_is_not_a_file(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer
) -> None:
    repo = make_repo(tmp_path, with_good({"x.py": "X = 1\n", "fifo.py": "F = 1\n"}))
    (repo.root / "x.py").unlink()
    (repo.root / "x.py").mkdir()  # tracked x.py is now a directory (with a file in it)
    (repo.root / "x.py" / "notes.txt").write_text("not python\n", encoding="utf-8")
    (repo.root / "fifo.py").unlink()
    os.mkfifo(repo.root / "fifo.py")  # opening it would block forever: it must never be read
    (repo.root / "y.py").mkdir()  # an untracked directory named like a module, with a module in it
    (repo.root / "y.py" / "inner.py").write_text("def inner():\n    return 1\n", encoding="utf-8")
    idx = make_indexer(repo)
    export(idx)
    skipped = dict(idx.query("SELECT path, skip_reason FROM core.files WHERE skip_reason IS NOT NULL"))
    assert skipped == {"x.py": "not_a_file", "fifo.py": "not_a_file"}
    assert idx.query("SELECT qualname FROM analytics.function_metrics WHERE path = 'y.py/inner.py'") == [("inner",)]
    assert idx.query("SELECT count(*) FROM core.parse_errors") == [(0,)]
    assert_good_indexed(idx)


def _unprivileged() -> list[str]:
    """A command prefix under which a mode-000 file cannot be read.

    Tests run as root here, and root reads mode-000 files (CAP_DAC_OVERRIDE): the export then
    runs without the two capabilities that bypass file permissions (root stays root otherwise).
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv is missing: no way to make a file unreadable")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def test_a_file_the_process_cannot_read_is_recorded_as_unreadable(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer
) -> None:
    repo = make_repo(tmp_path, with_good({"secret.py": "def secret():\n    return 1\n"}))
    secret = repo.root / "secret.py"
    secret.chmod(0)
    db = tmp_path / "db" / "codeintel.duckdb"
    try:
        prefix = _unprivileged()
        probe = subprocess.run(
            [*prefix, sys.executable, "-c", f"open({str(secret)!r}).read()"], capture_output=True, check=False
        )
        assert probe.returncode != 0 and b"PermissionError" in probe.stderr, "the file is still readable"
        done = subprocess_export(repo.root, db, "--executor", "serial", prefix=prefix)
    finally:
        secret.chmod(0o644)
    assert done.returncode == 0, done.stderr
    idx = make_indexer(repo, db)
    assert_steps_succeeded(idx)
    assert file_row(idx, "secret.py") == ("secret", False, "unreadable")
    assert idx.query("SELECT count(*) FROM core.parse_errors") == [(0,)]
    assert rows_of(idx, "secret.py") == dict.fromkeys(STEP_TABLES, 0)
    assert_good_indexed(idx)


def _when_ast_ingest_starts(action: Callable[[], None]) -> Callable[[str, str, Any], None]:
    """An `on_event` hook running `action` after repo_scan, as ast_ingest starts."""

    def on_event(step: str, what: str, result: Any) -> None:
        if (step, what) == ("ast_ingest", "start"):
            action()

    return on_event


def _besides_the_indexer(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows other than scip_ingest's: pyrefly, started right after the scan, may or may not
    have read the file before it went (if not, one `missing` row of its own, redone next run)."""
    assert all(e["kind"] == "missing" for e in errors if e["step"] == "scip_ingest"), errors
    return [e for e in errors if e["step"] != "scip_ingest"]


def test_a_file_deleted_between_scan_and_parse_is_missing_then_redone_or_cleared(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer
) -> None:
    source = "def doomed():\n    return 1\n"
    repo = make_repo(tmp_path, with_good({"doomed.py": source, "back.py": source}))

    def delete_both() -> None:
        for name in ("doomed.py", "back.py"):
            (repo.root / name).unlink()

    idx = make_indexer(repo)
    export(idx, on_event=_when_ast_ingest_starts(delete_both))
    for path in ("doomed.py", "back.py"):
        (error,) = _besides_the_indexer(errors_of(idx, path))
        assert (error["step"], error["kind"]) == ("ast_ingest", "missing")
        assert "No such file" in error["message"]
        assert rows_of(idx, path) == dict.fromkeys(STEP_TABLES, 0)
    assert_good_indexed(idx)
    # next run: back.py is back as it was (so it must be redone), doomed.py stays gone (still
    # tracked by git) and leaves no row behind
    (repo.root / "back.py").write_text(source, encoding="utf-8")
    export(idx)
    assert errors_of(idx, "back.py") == []
    assert rows_of(idx, "back.py") == {"ast_ingest": 2, "function_metrics": 1, "import_graph": 0, "call_graph": 1}
    assert file_row(idx, "doomed.py") is None
    assert errors_of(idx, "doomed.py") == []
    assert idx.query("SELECT count(*) FROM meta.step_status WHERE stale") == [(0,)]
    assert_good_indexed(idx)


@pytest.mark.timeout(60)  # reading a FIFO blocks until a writer comes: a regression hangs
def test_a_file_replaced_by_a_fifo_between_scan_and_parse_is_never_opened_for_reading(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer
) -> None:
    repo = make_repo(tmp_path, with_good({"swapped.py": "def swapped():\n    return 1\n"}))
    path = repo.root / "swapped.py"

    def swap() -> None:
        path.unlink()
        os.mkfifo(path)

    idx = make_indexer(repo)
    export(idx, on_event=_when_ast_ingest_starts(swap))
    (error,) = _besides_the_indexer(errors_of(idx, "swapped.py"))
    assert (error["step"], error["kind"]) == ("ast_ingest", "missing")
    assert "not a regular file" in error["message"]
    assert_good_indexed(idx)


# ------------------------------------------------------------------------ extractors that raise

VICTIM_SOURCE = "from good.helpers import helper\n\n\ndef victim(x):\n    return helper(x)\n"
VICTIM_DEF_LINE = 4
VICTIM = {"victim.py": VICTIM_SOURCE}

# extractor, its step, what it raises on its own victim file, the kind of the row
EXTRACTOR_FAILURES = [
    ("definitions", "ast_ingest", ValueError, "extractor_error"),
    ("metrics", "function_metrics", ZeroDivisionError, "extractor_error"),
    ("imports", "import_graph", KeyError, "extractor_error"),
    ("call_facts", "call_graph", TypeError, "extractor_error"),
    ("metrics", "function_metrics", RecursionError, "recursion"),
]


def _victim(step: str, exc: type[BaseException]) -> str:
    return f"victims/{step}_{exc.__name__}.py"


def _raising_on(victims: Mapping[str, type[BaseException]], original: Any) -> Any:
    """`original`, raising on each path of `victims` what it maps to."""

    def extractor(batch: Any, ref: Any, parsed: Any, out: Any) -> None:
        if ref.path in victims:
            node = parsed.tree.body[-1]  # a syntax node in a frame's locals gives the row its line
            raise victims[ref.path](f"injected into {ref.path} at line {node.lineno}")
        original(batch, ref, parsed, out)

    return extractor


def _inject_extractor_failures(patch: pytest.MonkeyPatch) -> None:
    for extractor in {c[0] for c in EXTRACTOR_FAILURES}:
        victims = {_victim(step, exc): exc for name, step, exc, _ in EXTRACTOR_FAILURES if name == extractor}
        patch.setitem(filework.EXTRACTORS, extractor, _raising_on(victims, filework.EXTRACTORS[extractor]))


@pytest.mark.parametrize(
    ("step", "exc", "kind"),
    [c[1:] for c in EXTRACTOR_FAILURES],
    ids=[f"{c[1]}-{c[2].__name__}" for c in EXTRACTOR_FAILURES],
)
def test_an_extractor_raising_on_one_file_costs_that_file_one_row_serial(
    exported: Callable[..., Indexer], step: str, exc: type[BaseException], kind: str
) -> None:
    files = with_good({_victim(c[1], c[2]): VICTIM_SOURCE for c in EXTRACTOR_FAILURES})
    idx = exported("extractor-failures", files, during=_inject_extractor_failures)
    path = _victim(step, exc)
    (error,) = errors_of(idx, path)
    assert (error["step"], error["kind"], error["error_type"]) == (step, kind, exc.__name__)
    if kind == "extractor_error":
        message = f"injected into {path} at line {VICTIM_DEF_LINE}"
        assert error["message"] == (repr(message) if exc is KeyError else message)  # str(KeyError) quotes
        assert (error["line"], error["col"]) == (VICTIM_DEF_LINE, 1)
    counts = rows_of(idx, path)
    assert counts[step] == 0 and all(n > 0 for s, n in counts.items() if s != step), counts
    processed = idx.query("SELECT hash FROM meta.step_file_state WHERE step = ? AND path = ?", [step, path])
    assert processed == idx.query("SELECT hash FROM core.file_state WHERE path = ?", [path]), "counted as processed"
    assert idx.query("SELECT count(*) FROM meta.step_status WHERE stale") == [(0,)]
    assert_good_indexed(idx)


SITECUSTOMIZE = '''
"""Test hook: make one extractor raise on one file, in worker processes only."""
import os

if os.environ.get("HOSTILE_FAIL_PATH"):
    import multiprocessing

    from codeintel.ingestion import filework

    _name = os.environ["HOSTILE_FAIL_EXTRACTOR"]
    _original = filework.EXTRACTORS[_name]

    def _failing(batch, ref, parsed, out):
        process = multiprocessing.current_process().name
        if ref.path == os.environ["HOSTILE_FAIL_PATH"] and process != "MainProcess":
            raise RuntimeError(f"injected in worker {process} (pid {os.getpid()})")
        return _original(batch, ref, parsed, out)

    filework.EXTRACTORS[_name] = _failing
'''


def _parallel_files() -> dict[str, str | bytes | None]:
    """Enough files and bytes that per-file work really goes to the executor (see
    `executors.should_parallelise`): 17 small modules, each padded by a 26 kB comment."""
    padding = "".join(f"# padding line {n:05d} {'-' * 40}\n" for n in range(420))
    files: dict[str, str | bytes | None] = {
        f"pad/m{i:02d}.py": f"{padding}\n\ndef pad_{i}(x):\n    return x\n" for i in range(17)
    }
    files.update(with_good(VICTIM))
    return files


@pytest.fixture
def failing_worker_env(tmp_path: Path) -> dict[str, str]:
    """Env for processes that should load `SITECUSTOMIZE` (PYTHONPATH first, then what was there)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, "HOSTILE_FAIL_PATH": "victim.py"}


def _assert_worker_failure(idx: Indexer, step: str, worker: str) -> None:
    """The export succeeded; the one failure, raised in a worker process named `worker...`, is a row."""
    assert_steps_succeeded(idx)
    (error,) = errors_of(idx, "victim.py")
    assert (error["step"], error["kind"], error["error_type"]) == (step, "extractor_error", "RuntimeError")
    assert error["message"].startswith(f"injected in worker {worker}"), error["message"]
    counts = rows_of(idx, "victim.py")
    assert counts[step] == 0 and all(n > 0 for s, n in counts.items() if s != step), counts
    pads = idx.query("SELECT count(*) FROM analytics.function_metrics WHERE path LIKE 'pad/%'")
    assert pads == [(17,)]
    assert_good_indexed(idx)


def test_an_extractor_raising_in_a_process_pool_worker_costs_that_file_one_row(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer, failing_worker_env: dict[str, str]
) -> None:
    repo = make_repo(tmp_path, _parallel_files())
    db = tmp_path / "db" / "codeintel.duckdb"
    env = {**failing_worker_env, "HOSTILE_FAIL_EXTRACTOR": "metrics"}
    done = subprocess_export(repo.root, db, "--executor", "process", "--workers", "2", env=env)
    assert done.returncode == 0, done.stderr
    _assert_worker_failure(make_indexer(repo, db), "function_metrics", worker="ForkServerProcess-")


def test_an_extractor_raising_on_a_dask_worker_costs_that_file_one_row(
    tmp_path: Path,
    make_repo: MakeRepo,
    make_indexer: MakeIndexer,
    monkeypatch: pytest.MonkeyPatch,
    failing_worker_env: dict[str, str],
) -> None:
    distributed = pytest.importorskip("distributed")
    for name, value in {**failing_worker_env, "HOSTILE_FAIL_EXTRACTOR": "call_facts"}.items():
        monkeypatch.setenv(name, value)  # before the cluster starts: its worker processes inherit it
    repo = make_repo(tmp_path, _parallel_files())
    idx = make_indexer(repo)
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        export(idx, executor="dask", dask_address=cluster.scheduler_address)
    _assert_worker_failure(idx, "call_graph", worker="Dask Worker process")


# ----------------------------------------------------------------- a failing whole-program step


def _step_status(idx: Indexer) -> dict[str, dict[str, Any]]:
    cols = ("step", "last_status", "last_run_id", "last_success_run_id", "stale", "stale_reason", "last_error")
    return {
        row[0]: dict(zip(cols, row, strict=True))
        for row in idx.query(f"SELECT {', '.join(cols)} FROM meta.step_status")
    }


DOWNSTREAM_OF_CALL_GRAPH = ["call_graph", "call_graph_types", "graph_metrics", "subsystems", "docs_views"]


def test_a_failing_call_graph_solve_still_publishes_and_the_next_run_catches_up(
    tmp_path: Path,
    make_repo: MakeRepo,
    make_indexer: MakeIndexer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COLUMNS", "500")  # the summary's console: no path wrapped
    repo = make_repo(tmp_path, GOOD)
    idx = make_indexer(repo)
    first = export(idx)
    kept = {
        table: sorted(idx.query(f"SELECT * FROM {table}"), key=repr)
        for table in ("graph.call_edges", "analytics.graph_metrics_functions", "analytics.subsystems")
    }
    repo.apply({"good/extra.py": "from good.helpers import helper\n\n\ndef extra():\n    return helper(5)\n"})

    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(steps, "solve_call_edges", _explode)
        assert cli("export", repo.root, "--db", idx.db, "--executor", "serial") == 1
    out, err = capsys.readouterr()
    assert f"published: {idx.db}" in out
    assert "call_graph: RuntimeError: the solver exploded" in err and "published" in err
    # this run's output for the steps that succeeded ...
    assert ("good.extra", "extra") in idx.query("SELECT module, qualname FROM core.goids")
    assert idx.query("SELECT cyclomatic FROM analytics.function_metrics WHERE qualname = 'extra'") == [(1,)]
    assert ("good.extra", "good.helpers") in idx.query("SELECT src_module, dst_module FROM graph.import_edges")
    # ... and the last good output of the failed step and of the steps after it
    for table, rows in kept.items():
        assert sorted(idx.query(f"SELECT * FROM {table}"), key=repr) == rows, table
    assert idx.query("SELECT count(*) FROM docs.v_call_graph_enriched") == [(1,)]
    status = _step_status(idx)
    for step in ALL_STEPS:
        row = status[step]
        if step in DOWNSTREAM_OF_CALL_GRAPH:  # stale, still serving the output of the first run
            assert row["stale"] and row["last_success_run_id"] == first.run_id, row
        else:
            assert (row["last_status"], row["stale"], row["last_error"]) == ("succeeded", False, None), row
    assert status["call_graph"]["last_status"] == "failed"
    assert status["call_graph"]["last_error"] == "RuntimeError: the solver exploded"
    failed_run = status["call_graph"]["last_run_id"]
    assert failed_run != first.run_id
    for step in DOWNSTREAM_OF_CALL_GRAPH[1:]:  # not run in the failed run: they keep the first run's output
        assert status[step]["last_status"] == "not_run" and status[step]["last_run_id"] == failed_run
        assert "call_graph" in status[step]["stale_reason"], status[step]

    export(idx)  # the solver works again
    status = _step_status(idx)
    assert {(r["last_status"], r["stale"], r["last_success_run_id"]) for r in status.values()} == {
        ("succeeded", False, status["repo_scan"]["last_run_id"])
    }
    calls = idx.query("SELECT caller, callee FROM graph.call_edges WHERE callee_goid IS NOT NULL ORDER BY 1")
    assert calls == [("good.extra.extra", "good.helpers.helper"), ("good.user.use", "good.helpers.helper")]
    assert ("good.extra.extra",) in idx.query(
        "SELECT full_name FROM docs.v_function_summary WHERE pagerank IS NOT NULL"
    )
    assert_good_indexed(idx)


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the solver exploded")


def test_a_step_that_succeeds_again_shows_no_last_error(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer
) -> None:
    idx = make_indexer(make_repo(tmp_path, GOOD))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(steps, "solve_call_edges", _explode)
        with pytest.raises(StepFailedError):
            idx.run()
    status = _step_status(idx)
    assert status["call_graph"]["last_error"] == "RuntimeError: the solver exploded"
    assert status["graph_metrics"]["last_status"] == "not_run" and status["graph_metrics"]["stale"]
    export(idx)
    assert _step_status(idx)["call_graph"]["last_error"] is None


# ------------------------------------------------------------ a --db that is not a CodeIntel DB


def _duckdb_with_a_user_table(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE users (name VARCHAR); INSERT INTO users VALUES ('ada')")
    con.close()


def _text_file(path: Path) -> None:
    path.write_text("precious notes, not a database\n", encoding="utf-8")


def _directory(path: Path) -> None:
    path.mkdir()
    (path / "keep.txt").write_text("keep\n", encoding="utf-8")


FOREIGN = [
    ("duckdb_with_a_user_table_at_db", "codeintel.duckdb", _duckdb_with_a_user_table),
    ("text_file_at_db", "codeintel.duckdb", _text_file),
    ("directory_at_db", "codeintel.duckdb", _directory),
    ("duckdb_with_a_user_table_at_the_work_db", "codeintel.work.duckdb", _duckdb_with_a_user_table),
    ("text_file_at_the_work_db", "codeintel.work.duckdb", _text_file),
]


def _snapshot(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())}
    return {"": path.read_bytes()}


@pytest.mark.parametrize(("name", "make"), [c[1:] for c in FOREIGN], ids=[c[0] for c in FOREIGN])
def test_a_foreign_file_at_the_db_paths_is_refused_and_left_untouched(
    tmp_path: Path, make_repo: MakeRepo, capsys: pytest.CaptureFixture[str], name: str, make: Callable[[Path], None]
) -> None:
    repo = make_repo(tmp_path, GOOD)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    foreign = out_dir / name
    make(foreign)
    before = _snapshot(foreign)
    capsys.readouterr()
    assert cli("export", repo.root, "--db", out_dir / "codeintel.duckdb", "--executor", "serial", "--quiet") == 2
    err = capsys.readouterr().err
    assert str(foreign) in err and "will not replace" in err, err
    assert _snapshot(foreign) == before
    others = {p.name for p in out_dir.iterdir() if p.name != name and not p.name.endswith(".lock")}
    assert others == set(), "nothing was written beside it"


def test_a_codeintel_database_at_db_is_replaced_by_the_next_publish(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer
) -> None:
    repo = make_repo(tmp_path, GOOD)
    db = tmp_path / "out" / "codeintel.duckdb"
    assert cli("export", repo.root, "--db", db, "--executor", "serial", "--quiet") == 0
    first = db.stat().st_ino
    repo.apply({"good/more.py": "def more():\n    return 2\n"})
    db.with_name("codeintel.work.duckdb").unlink()  # even with no work DB beside it
    assert cli("export", repo.root, "--db", db, "--executor", "serial", "--quiet") == 0
    assert db.stat().st_ino != first, "replaced by a new file (atomic rename), not written in place"
    idx = make_indexer(repo, db)
    assert ("good.more", "more") in idx.query("SELECT module, qualname FROM core.goids")
    assert_steps_succeeded(idx)
    assert_good_indexed(idx)


def test_a_database_built_under_another_repository_name_is_refused_unless_named_alike_or_full(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same code cloned under another directory name, exported into the same --db: GOIDs are
    keyed by the repository's name (by default the directory's), so an update would leave the
    unchanged files' GOIDs under the old name and the history's under the new one."""
    repo = make_repo(tmp_path, GOOD, name="alpha")
    db = tmp_path / "out" / "codeintel.duckdb"
    assert cli("export", repo.root, "--db", db, "--executor", "serial", "--quiet") == 0
    published = db.read_bytes()
    clone = tmp_path / "beta"
    subprocess.run(["git", "clone", "-q", str(repo.root), str(clone)], check=True)
    capsys.readouterr()
    assert cli("export", clone, "--db", db, "--executor", "serial", "--quiet") == 2
    err = capsys.readouterr().err
    assert "'alpha'" in err and "'beta'" in err and "CODEINTEL_REPO_NAME=alpha" in err and "--full" in err, err
    assert db.read_bytes() == published, "the published database is left as it was"

    def goids(idx: Indexer) -> set[tuple[str, str]]:
        return set(idx.query("SELECT repo, goid FROM core.goids"))

    before = goids(make_indexer(repo, db))
    monkeypatch.setenv("CODEINTEL_REPO_NAME", "alpha")  # the name kept: an update like any other
    assert cli("export", clone, "--db", db, "--executor", "serial", "--quiet") == 0
    assert goids(make_indexer(clone, db)) == before
    monkeypatch.delenv("CODEINTEL_REPO_NAME")
    # renamed on purpose: every step is redone under the new name, the ones not selected included
    assert cli("export", clone, "--db", db, "--executor", "serial", "--quiet", "--full", "--select", "goids") == 0
    idx = make_indexer(clone, db)
    assert {r for r, _ in goids(idx)} == {"beta"}
    assert cli("export", clone, "--db", db, "--executor", "serial", "--quiet") == 0
    assert {r for r, _ in goids(idx)} == {"beta"}
    assert_steps_succeeded(idx)
    unjoined = idx.query(
        "SELECT count(*) FROM history.head_defs h LEFT JOIN core.goids g USING (goid) WHERE g.goid IS NULL"
    )
    assert unjoined == [(0,)], "the history's GOIDs are the code's"
    edges = idx.query("SELECT count(*) FROM graph.call_edges e JOIN core.goids g ON g.goid = e.caller_goid")
    assert edges == idx.query("SELECT count(*) FROM graph.call_edges"), "the call graph redone under the new name"


def test_a_file_that_parses_but_nests_too_deeply_for_the_call_graph_is_its_row(
    tmp_path: Path, make_repo: MakeRepo, make_indexer: MakeIndexer
) -> None:
    deep = "X = " + "a if b else " * 2000 + "c\n\n\ndef shallow():\n    return 1\n"
    idx = make_indexer(make_repo(tmp_path, with_good({"deep.py": deep})))
    export(idx)
    rows = {r["step"]: r for r in errors_of(idx, "deep.py")}
    assert rows["call_graph"]["kind"] == "recursion" and rows["call_graph"]["error_type"] == "RecursionError"
    assert "ast_ingest" not in rows  # it parses: its definitions are indexed
    assert idx.query("SELECT qualname FROM core.goids WHERE path = 'deep.py' AND kind = 'function'") == [("shallow",)]
    assert idx.query("SELECT count(*) FROM graph.call_facts WHERE path = 'deep.py'") == [(0,)]
    assert_good_indexed(idx)
