"""What the server reads from the checkout: blob ids, changed and untracked files, a symbol's
source lines, on names and text that git or `str.splitlines` would otherwise mangle."""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from anyio.from_thread import start_blocking_portal
from mcp import Client
from serving_support import Mcp, Project

from codeintel.serving import worktree
from codeintel.serving.server import build_server
from codeintel.serving.service import Service
from codeintel.serving.snapshot import SnapshotStore
from tests.conftest import git, write_files

# names git quotes on a line of its output: non-ASCII (core.quotePath, on by default), a tab,
# a double quote, a backslash; a space it does not
ODD_NAMES = ("pkg/módulo.py", "pkg/tab\there.py", 'pkg/say "hi".py', "pkg/back\\slash.py", "pkg/sp ace.py")


@contextmanager
def _mcp(project: Project) -> Iterator[Mcp]:
    """An MCP client on `project`'s published database (the real server, in this process)."""
    store = SnapshotStore(project.db, project.repo)
    try:
        with (
            start_blocking_portal() as portal,
            portal.wrap_async_context_manager(Client(build_server(Service(store)))) as client,
        ):
            yield Mcp(portal, client)
    finally:
        store.close()


def test_blob_ids_and_changed_files_keep_names_git_would_quote(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    write_files(repo, {"pkg/__init__.py": "", **{name: f"X = {i}\n" for i, name in enumerate(ODD_NAMES)}})
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    commit = git(repo, "rev-parse", "HEAD").strip()
    listed = subprocess.run(["git", "ls-tree", "-r", "-z", commit], cwd=repo, capture_output=True, check=True).stdout
    expected = {
        e.partition(b"\t")[2].decode(): e.split(b" ")[2].split(b"\t")[0].decode() for e in listed.split(b"\0") if e
    }
    assert set(expected) == {"pkg/__init__.py", *ODD_NAMES}
    assert worktree.blobs_at(repo, commit, [], whole=True) == expected
    assert worktree.blobs_at(repo, commit, ["pkg/módulo.py", "pkg/tab\there.py"]) == {
        k: expected[k] for k in ("pkg/módulo.py", "pkg/tab\there.py")
    }
    assert worktree.blobs_of_commit(repo, commit, sorted(expected)) == expected
    write_files(repo, {name: "X = 99\n" for name in ODD_NAMES[:3]} | {"pkg/nué.py": "Y = 1\n", "pkg/a\tb.py": ""})
    state = worktree.worktree_state(repo, commit)
    assert state.error is None
    assert state.changed == sorted(ODD_NAMES[:3])
    assert state.untracked == sorted(["pkg/nué.py", "pkg/a\tb.py"])


def test_get_symbol_shows_the_lines_the_span_counts_past_a_form_feed_and_a_line_separator(tmp_path: Path) -> None:
    """A form feed between definitions (GNU-style page breaks) and a U+2028 or NEL in a comment
    are no line ends to Python: the source shown for a function after them is its own lines.
    The file's name is not ASCII: the status lists it changed by its name."""
    source = (
        "def first():\n    return 1  # a line separator \u2028 and a NEL \x85 here\n"
        "\x0c\n\x0c\n"
        "def second(x):\n    '''Doubles.'''\n    return x * 2\n"
    )
    project = Project.create(tmp_path / "p", {"pkg/__init__.py": "", "pkg/módulo.py": source.encode("utf-8")})
    project.run()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "second")
    python_lines = source.replace("\r\n", "\n").split("\n")
    with _mcp(project) as mcp:
        card = mcp.json("get_symbol", symbol="pkg.módulo.second")
        assert card["facts"]["at"] == f"pkg/módulo.py:{node.lineno}-{node.end_lineno} (3 lines)"
        assert card["facts"]["signature"] == "def second(x)"
        shown = next(s for s in card["sections"] if s["name"].startswith("source"))
        assert shown["rows"] == [[n, python_lines[n - 1]] for n in range(node.lineno, (node.end_lineno or 0) + 1)]
        assert shown["rows"][0][1] == "def second(x):"
        (project.repo / "pkg" / "módulo.py").write_bytes(source.encode("utf-8") + b"Z = 1\n")
        status = mcp.json("status")
        assert {tuple(r) for r in status["sections"][1]["rows"]} == {("pkg/módulo.py", "changed")}


def test_a_path_and_line_names_the_innermost_definition_when_spans_are_equal(tmp_path: Path) -> None:
    """A file holding one function spans what the function spans, and a file of a class on one
    line what the class spans: the line names the function, the class, never the module
    (whatever order their GOIDs sort in)."""
    solos = {f"pkg/solo{i}.py": f"def solo{i}():\n    return {i}\n" for i in range(6)}
    files = {"pkg/__init__.py": "", **solos, "pkg/one.py": "class C: m = lambda self: 1\n"}
    project = Project.create(tmp_path / "p", {k: v.encode() for k, v in files.items()})
    project.run()
    con = duckdb.connect(str(project.db), read_only=True)
    try:
        goids = dict(con.execute("SELECT path || kind, goid FROM docs.symbols").fetchall())
    finally:
        con.close()
    assert any(goids[f"{p}module"] < goids[f"{p}function"] for p in solos)  # a tie the GOID would break wrongly
    with _mcp(project) as mcp:
        for i, path in enumerate(solos):
            for at in (f"{path}:1", f"{path}:2", f"{path.removeprefix('pkg/')}:2"):
                assert mcp.json("get_symbol", symbol=at)["title"] == f"function pkg.solo{i}.solo{i}", at
        assert mcp.json("get_symbol", symbol="pkg/one.py:1")["title"] == "class pkg.one.C"
