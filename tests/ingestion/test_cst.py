"""cst_ingest through the real pipeline: comments with pragmas and task tags, def headers keyed by
the GOIDs core.goids gives, name sites with their roles, on real git repositories in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from codeintel.analysis.goids import make_goid
from codeintel.ingestion.change_tracker import FileRef
from codeintel.ingestion.filework import FileBatch, extract_batch
from codeintel.storage.catalog import CATALOG, Table

STEPS = ["cst_ingest", "goids", "call_graph"]

TRICKY = '''\
"""Definitions whose GOIDs are easy to get wrong."""
import sys
from typing import overload


@overload
def parse(x: int) -> int: ...
@overload
def parse(x: str) -> str: ...
def parse(x):
    return x


class Shape:
    @property
    def area(self):
        return 1

    @area.setter
    def area(self, value):
        pass

    class Inner:
        def method(self):
            def helper():
                class Local:
                    def deep(self):
                        pass
                return Local
            return helper

    if sys.version_info >= (3, 8):
        def maybe(self):
            return 1
    else:
        def maybe(self):
            return 2

    try:
        def guarded(self): ...
    except ImportError:
        def guarded(self): ...
    finally:
        pass


def outer():
    def inner():
        pass

    def inner():  # redefined: a second GOID
        pass

    return inner


for _ in range(1):
    def looped():
        pass

with open(__file__) as handle:
    class Managed:
        pass

match sys.platform:
    case "linux":
        def platform_only():
            pass
    case _:
        def platform_only():
            pass

while False:
    async def waiting():
        pass
'''

HEADERS = """\
import functools
from typing import overload


def plain(a, b=2, *args, c, d: int = 4, **kw) -> None:
    pass


@functools.lru_cache(maxsize=None)
@staticmethod
async def fetch(
    url: str,  # where
    /,
    timeout: float = 1.5,
    *,
    retries: int = (1,),
) -> bytes:
    return b""


class Base:
    pass


class Child(Base, metaclass=type):
    @overload
    def get(self, key: int) -> int: ...
    @overload
    def get(self, key: str) -> str: ...
    def get(self, key):
        return key
"""

GENERIC = """\
def first[T](items: list[T]) -> T:
    return items[0]


class Box[T: (int, str), *Ts, **P]:
    def put[U](self, item: U) -> None:
        pass


type Pair[K] = tuple[K, K]
"""


def _index(make_repo: Any, make_indexer: Any, tmp_path: Path, files: dict[str, Any], steps: list[str] = STEPS) -> Any:
    repo = make_repo(tmp_path, files)
    indexer = make_indexer(repo)
    run = indexer.run(steps)
    assert run.ok and not run.not_run, run
    return indexer


# ------------------------------------------------------------------------------ comments


COMMENTS = """\
#!/usr/bin/env python
import os  # noqa: F401
# TODO: split this module
x = os.environ.get("X")  # type: ignore[union-attr]  # noqa:E501,W291


def f():  # pragma: no cover
    # fmt: off
    y = [1,2]  # FIXME: spacing  # nosec B101
    # fmt: on
    return y  # pylint: disable=W0611, unused-variable  # pyright: ignore[reportGeneralTypeIssues]
"""


def test_comments_give_placement_enclosing_goid_pragmas_with_codes_and_task_tags(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    idx = _index(make_repo, make_indexer, tmp_path, {"mod.py": COMMENTS})
    rows = idx.query(
        "SELECT line, col, text, placement, enclosing_goid, pragma, codes, tag, tag_text FROM core.comments "
        "ORDER BY line, col, pragma"
    )
    goids = dict(idx.query("SELECT qualname, goid FROM core.goids"))
    module, func = goids["mod"], goids["f"]
    expected = [
        (1, 0, "#!/usr/bin/env python", "own_line", module, None, None, None, None),
        (2, 11, "# noqa: F401", "trailing", module, "noqa", ["F401"], None, None),
        (3, 0, "# TODO: split this module", "own_line", module, None, None, "TODO", "split this module"),
        (4, 25, "# type: ignore[union-attr]  # noqa:E501,W291", "trailing", module, "noqa", ["E501", "W291"], None, None),
        (4, 25, "# type: ignore[union-attr]  # noqa:E501,W291", "trailing", module, "type_ignore", ["union-attr"], None, None),
        (7, 10, "# pragma: no cover", "trailing", func, "no_cover", [], None, None),
        (8, 4, "# fmt: off", "own_line", func, "fmt_off", [], None, None),
        (9, 15, "# FIXME: spacing  # nosec B101", "trailing", func, "nosec", ["B101"], "FIXME", "spacing"),
        (10, 4, "# fmt: on", "own_line", func, "fmt_on", [], None, None),
        (11, 14, "# pylint: disable=W0611, unused-variable  # pyright: ignore[reportGeneralTypeIssues]",
         "trailing", func, "pylint_disable", ["W0611", "unused-variable"], None, None),
        (11, 14, "# pylint: disable=W0611, unused-variable  # pyright: ignore[reportGeneralTypeIssues]",
         "trailing", func, "pyright_ignore", ["reportGeneralTypeIssues"], None, None),
    ]  # fmt: skip
    assert rows == expected


# ------------------------------------------------------------------------------ headers and GOIDs


def test_every_def_header_has_the_goid_core_goids_gives_it(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    idx = _index(make_repo, make_indexer, tmp_path, {"pkg/__init__.py": "", "pkg/tricky.py": TRICKY})
    goids = idx.query("SELECT goid, kind, qualname, ordinal FROM core.goids WHERE kind != 'module' ORDER BY goid")
    headers = idx.query("SELECT goid, kind, qualname, ordinal FROM core.def_headers ORDER BY goid")
    assert headers == goids
    assert len(goids) == 23
    ordinals = {(q, o) for _, _, q, o in goids}
    assert {("parse", 2), ("Shape.area", 1), ("Shape.maybe", 1), ("outer.inner", 1), ("platform_only", 1)} <= ordinals
    assert ("Shape.Inner.method.helper.Local.deep", 0) in ordinals


def test_def_headers_of_decorated_async_overloaded_and_multiline_defs(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    idx = _index(make_repo, make_indexer, tmp_path, {"h.py": HEADERS})
    rows = {(r["qualname"], r["ordinal"]): r for r in idx.work_query("SELECT * FROM core.def_headers")}
    plain = rows[("plain", 0)]
    assert plain["header"] == "def plain(a, b=2, *args, c, d: int = 4, **kw) -> None:"
    assert [(p["name"], p["kind"], p["annotation"], p["default"]) for p in plain["params"]] == [
        ("a", "positional_or_keyword", None, None),
        ("b", "positional_or_keyword", None, "2"),
        ("args", "var_positional", None, None),
        ("c", "keyword_only", None, None),
        ("d", "keyword_only", "int", "4"),
        ("kw", "var_keyword", None, None),
    ]
    assert (plain["returns"], plain["decorators"], plain["is_async"], plain["line"]) == ("None", [], False, 5)

    fetch = rows[("fetch", 0)]
    assert fetch["header"] == (
        "async def fetch(\n    url: str,  # where\n    /,\n    timeout: float = 1.5,\n    *,\n"
        "    retries: int = (1,),\n) -> bytes:"
    )
    assert fetch["signature"] == "async def fetch(url: str, /, timeout: float = 1.5, *, retries: int = (1,)) -> bytes:"
    assert (fetch["line"], fetch["col"], fetch["end_line"], fetch["end_col"]) == (11, 0, 17, 11)
    assert fetch["is_async"] is True
    assert fetch["decorators"] == [
        {"text": "functools.lru_cache(maxsize=None)", "line": 9},
        {"text": "staticmethod", "line": 10},
    ]
    assert [(p["name"], p["kind"]) for p in fetch["params"]] == [
        ("url", "positional_only"),
        ("timeout", "positional_or_keyword"),
        ("retries", "keyword_only"),
    ]
    assert fetch["params"][2]["default"] == "(1,)"

    child = rows[("Child", 0)]
    assert (child["kind"], child["header"], child["params"], child["returns"]) == (
        "class",
        "class Child(Base, metaclass=type):",
        None,
        None,
    )
    overloads = sorted((o, r["goid"], r["returns"], r["decorators"]) for (q, o), r in rows.items() if q == "Child.get")
    assert [(o, ret, [d["text"] for d in decs]) for o, _, ret, decs in overloads] == [
        (0, "int", ["overload"]),
        (1, "str", ["overload"]),
        (2, None, []),
    ]
    core = dict(idx.query("SELECT ordinal, goid FROM core.goids WHERE qualname = 'Child.get'"))
    assert {o: g for o, g, _, _ in overloads} == core, "each overload has its own GOID, as in core.goids"


def test_pep_695_generics_get_headers_and_the_goids_a_newer_python_gives(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    idx = _index(make_repo, make_indexer, tmp_path, {"gen.py": GENERIC})
    rows = {r["qualname"]: r for r in idx.work_query("SELECT * FROM core.def_headers")}
    assert rows["first"]["type_params"] == "[T]"
    assert rows["first"]["header"] == "def first[T](items: list[T]) -> T:"
    assert rows["Box"]["type_params"] == "[T: (int, str), *Ts, **P]"
    assert rows["Box.put"]["kind"] == "method" and rows["Box.put"]["type_params"] == "[U]"
    expected = {q: make_goid("repo", "gen.py", rows[q]["kind"], q, 0) for q in ("first", "Box", "Box.put")}
    assert {q: r["goid"] for q, r in rows.items()} == expected
    core = dict(idx.query("SELECT qualname, goid FROM core.goids WHERE kind != 'module'"))
    if sys.version_info >= (3, 12):
        assert core == expected, "ast parses PEP 695 here: the same GOIDs"
    else:
        assert core == {}, "ast cannot parse PEP 695 here: only cst_ingest has the definitions"
        assert idx.query("SELECT step, kind FROM core.parse_errors") == [("ast_ingest", "unsupported_syntax")]
    sites = dict(idx.query("SELECT line || ':' || col, role FROM core.name_sites WHERE path = 'gen.py'"))
    assert (sites["1:10"], sites["1:25"], sites["5:10"], sites["5:14"], sites["10:5"], sites["10:10"]) == (
        "definition",  # T of first[T]
        "annotation",  # T of list[T]
        "definition",  # T of Box[T: ...]
        "annotation",  # its bound's int
        "write",  # the alias Pair
        "definition",  # K
    )


REPO_ROOT = Path(__file__).resolve().parents[2]


def _newer_python() -> tuple[str, dict[str, str]] | None:
    """A Python >= 3.12 on this machine (directly, or a pyenv version), with the environment to run
    it in (this checkout on its path), or None."""
    base = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    envs = [base]
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True, check=False)
        envs += [{**base, "PYENV_VERSION": v.strip()} for v in found.stdout.split() if v.startswith("3.1")]
    for name in ("python3.14", "python3.13", "python3.12"):
        path = shutil.which(name)
        if path is None:
            continue
        for env in envs:
            probe = [path, "-c", "import sys; assert sys.version_info >= (3, 12)"]
            if subprocess.run(probe, env=env, capture_output=True, check=False).returncode == 0:
                return path, env
    return None


NEWER_PYTHON = _newer_python() if sys.version_info < (3, 12) else None
_AST_DEFINITIONS = """
import ast, json, sys
from codeintel.analysis.definitions import iter_definitions
from codeintel.analysis.goids import make_goid
from codeintel.ingestion.change_tracker import FileRef
from codeintel.ingestion.filework import FileBatch, extract_batch
text = sys.stdin.read()
defs = iter_definitions(ast.parse(text), "gen", "gen.py", len(text.splitlines()))
print(json.dumps(sorted(make_goid("repo", d.path, d.kind, d.qualname, d.ordinal) for d in defs if d.kind != "module")))
"""


@pytest.mark.skipif(
    NEWER_PYTHON is None, reason="the running Python parses PEP 695 itself, or no Python >= 3.12 to compare with"
)
def test_pep_695_goids_equal_what_ast_gives_under_a_newer_python(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    idx = _index(make_repo, make_indexer, tmp_path, {"gen.py": GENERIC}, ["cst_ingest"])
    assert NEWER_PYTHON is not None
    python, env = NEWER_PYTHON
    done = subprocess.run(
        [python, "-c", _AST_DEFINITIONS], input=GENERIC, capture_output=True, text=True, check=True, env=env
    )
    assert sorted(g for (g,) in idx.query("SELECT goid FROM core.def_headers")) == json.loads(done.stdout)


# ------------------------------------------------------------------------------ name sites

USES = {
    "app/__init__.py": "",
    "app/models.py": """\
        import dataclasses
        from typing import ClassVar


        class Base:
            registry: ClassVar[dict] = {}


        @dataclasses.dataclass(frozen=True)
        class User(Base, metaclass=type):
            name: str

            def rename(self, new: str) -> "User":
                return dataclasses.replace(self, name=new)
        """,
    "app/service.py": """\
        from app.models import User as U


        def run(session, names):
            users = [U(n) for n in names]
            total = 0
            for user in users:
                total += 1
                session.store.merge(user.rename(new="x"))
            del users
            if (count := total):
                session.count = count
            return total
        """,
}


def test_name_sites_give_each_role_across_files(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    idx = _index(make_repo, make_indexer, tmp_path, USES)
    sites = {
        (p.rpartition("/")[2], line, name): (role, call_line, call_col, qualifier)
        for p, line, name, role, call_line, call_col, qualifier in idx.query(
            "SELECT path, line, name, role, call_line, call_col, qualifier FROM core.name_sites"
        )
    }
    role = {k: v[0] for k, v in sites.items()}
    assert role[("models.py", 1, "dataclasses")] == "import"
    assert role[("models.py", 2, "ClassVar")] == "import"
    assert role[("models.py", 6, "registry")] == "write"
    assert role[("models.py", 6, "ClassVar")] == "annotation"
    assert role[("models.py", 9, "dataclasses")] == "decorator"
    assert sites[("models.py", 9, "dataclass")] == ("decorator", 9, 1, "dataclasses")  # applied: a call site
    assert role[("models.py", 9, "frozen")] == "keyword_argument"
    assert role[("models.py", 10, "User")] == "definition"
    assert role[("models.py", 10, "Base")] == "base_class"
    assert role[("models.py", 10, "metaclass")] == "keyword_argument"
    assert role[("models.py", 10, "type")] == "read"  # a keyword's value is no base
    assert role[("models.py", 13, "new")] == "definition"
    assert role[("models.py", 13, "str")] == "annotation"
    assert sites[("models.py", 14, "replace")] == ("call", 14, 15, "dataclasses")
    assert role[("service.py", 1, "User")] == "import" and role[("service.py", 1, "U")] == "import"
    assert sites[("service.py", 5, "U")] == ("call", 5, 13, None)
    assert role[("service.py", 5, "users")] == "write"
    comprehension = "SELECT col, role FROM core.name_sites WHERE path = 'app/service.py' AND name = 'n' ORDER BY col"
    assert idx.query(comprehension) == [(15, "read"), (22, "write")]  # its variable is written at "for n"
    assert role[("service.py", 7, "user")] == "write"
    assert role[("service.py", 8, "total")] == "write"  # augmented assignment
    assert sites[("service.py", 9, "merge")] == ("call", 9, 8, "session.store")
    assert sites[("service.py", 9, "rename")] == ("call", 9, 28, "user")
    assert sites[("service.py", 9, "store")] == ("read", None, None, "session")
    assert role[("service.py", 10, "users")] == "delete"
    assert role[("service.py", 11, "count")] == "write"  # walrus
    attribute = (
        "SELECT col, role, qualifier FROM core.name_sites WHERE path = 'app/service.py' AND line = 12 ORDER BY col"
    )
    assert idx.query(attribute) == [(8, "read", None), (16, "write", "session"), (24, "read", None)]
    assert role[("service.py", 12, "session")] == "read"
    roles = {r for (r,) in idx.query("SELECT DISTINCT role FROM core.name_sites")}
    assert roles == {
        "call", "read", "write", "delete", "import", "annotation", "decorator", "base_class",
        "keyword_argument", "definition",
    }  # fmt: skip
    enclosing = dict(
        idx.query("SELECT line || ':' || name, enclosing_goid FROM core.name_sites WHERE path = 'app/models.py'")
    )
    goids = dict(idx.query("SELECT qualname, goid FROM core.goids"))
    assert enclosing["14:replace"] == goids["User.rename"]
    assert enclosing["1:dataclasses"] == goids["app.models"]


HEADER_ARGUMENTS = """\
import functools
from typing import Generic, TypeVar

T = TypeVar("T")


def methods():
    return ["GET"]


class Store(Generic[T]):
    def route(self, rule, methods=None):
        return lambda f: f


class Users(Store[list[T]], functools.partial):
    @Store.route("/users", methods=methods())
    @functools.lru_cache(maxsize=len(methods()))
    def all(self):
        return []
"""


def test_a_decorators_or_bases_arguments_keep_their_own_roles(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    """What a decorator applies and what a class derives from take the context's role; names in
    their arguments are called, read or type arguments as anywhere else."""
    idx = _index(make_repo, make_indexer, tmp_path, {"pkg/__init__.py": "", "pkg/app.py": HEADER_ARGUMENTS})
    found = idx.query(
        "SELECT line, name, role, call_line, call_col FROM core.name_sites WHERE path = 'pkg/app.py' AND line >= 11"
        " AND role <> 'definition' ORDER BY line, col"
    )
    assert found == [
        (11, "Generic", "base_class", None, None),
        (11, "T", "annotation", None, None),
        (13, "f", "read", None, None),
        (16, "Store", "base_class", None, None),
        (16, "list", "annotation", None, None),
        (16, "T", "annotation", None, None),
        (16, "functools", "base_class", None, None),
        (16, "partial", "base_class", None, None),
        (17, "Store", "decorator", None, None),
        (17, "route", "decorator", 17, 5),  # the decorator's site, as the call graph puts it
        (17, "methods", "keyword_argument", None, None),
        (17, "methods", "call", 17, 35),
        (18, "functools", "decorator", None, None),
        (18, "lru_cache", "decorator", 18, 5),
        (18, "maxsize", "keyword_argument", None, None),
        (18, "len", "call", 18, 33),
        (18, "methods", "call", 18, 37),
    ]


def test_call_sites_sit_where_the_call_graph_puts_them(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    idx = _index(make_repo, make_indexer, tmp_path, USES)
    edges = idx.query(
        "SELECT DISTINCT path, line, col, callee_text FROM graph.call_edges WHERE regexp_matches(callee_text, '^[\\w.]+$')"
    )
    assert len(edges) >= 5
    for path, line, col, text in edges:
        found = idx.query(
            "SELECT name FROM core.name_sites WHERE path = ? AND call_line = ? AND call_col = ?", [path, line, col]
        )
        assert found == [(text.rpartition(".")[2],)], (path, line, col, text)


# ------------------------------------------------------------------------------ incremental, bad files


def _tables(idx: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {table: idx.table_rows(table) for table in (Table.COMMENTS, Table.DEF_HEADERS, Table.NAME_SITES)}


def test_an_edit_reprocesses_that_file_and_equals_a_full_run(tmp_path: Path, make_repo: Any, make_indexer: Any) -> None:
    repo = make_repo(tmp_path, {**USES, "h.py": HEADERS, "gone.py": "x = 1  # TODO: delete me\n"})
    idx = make_indexer(repo)
    idx.run(["cst_ingest"])
    repo.apply(
        {
            "app/service.py": USES["app/service.py"].replace("total = 0", "total = 0  # noqa: E501\n    extra = 1"),
            "gone.py": None,
        }
    )
    run = idx.run(["cst_ingest"])
    assert idx.step_runs(run.run_id)["cst_ingest"]["files_processed"] == 1
    assert idx.query("SELECT count(*) FROM core.comments WHERE path = 'gone.py'") == [(0,)]
    incremental = _tables(idx)
    full = make_indexer(repo, tmp_path / "full" / "c.duckdb")
    full.run(["cst_ingest"], full=True)
    assert incremental == _tables(full)
    assert ("app/service.py", 6) in {r[:2] for r in incremental[Table.COMMENTS]}


def test_non_utf8_and_syntax_error_files_give_rows_not_failures(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    files = {
        "latin.py": b"# -*- coding: latin-1 -*-\n" + "caf\xe9 = 'th\xe9'  # TODO: caf\xe9\n".encode("latin-1"),
        "broken_bytes.py": b"def ok():  # fine\n    return '\xff\xfe'\n",
        "broken.py": "def good(a):\n    return a\n\n\ndef bad(:\n    pass\n\n# FIXME: after the error\nvalue = good(1)\n",
    }
    idx = _index(make_repo, make_indexer, tmp_path, files, ["cst_ingest", "ast_ingest"])
    runs = idx.work_query("SELECT step, status FROM meta.step_runs")
    assert {(r["step"], r["status"]) for r in runs} >= {("cst_ingest", "succeeded"), ("ast_ingest", "succeeded")}
    assert idx.query("SELECT line, col, name FROM core.name_sites WHERE path = 'latin.py' ORDER BY col") == [
        (2, 0, "café")  # the cookie's encoding decoded, columns in UTF-8 bytes as ast gives them
    ]
    assert idx.query("SELECT tag, tag_text FROM core.comments WHERE path = 'latin.py' AND tag IS NOT NULL") == [
        ("TODO", "café")
    ]
    assert idx.query("SELECT qualname FROM core.def_headers WHERE path = 'broken_bytes.py'") == [("ok",)]
    assert idx.query("SELECT qualname FROM core.def_headers WHERE path = 'broken.py' ORDER BY line")[0] == ("good",)
    assert idx.query("SELECT tag FROM core.comments WHERE path = 'broken.py'") == [("FIXME",)]
    assert ("good", "call") in idx.query("SELECT name, role FROM core.name_sites WHERE path = 'broken.py' AND line = 9")
    # the one core.parse_errors row of a bad file stays ast_ingest's
    assert sorted(idx.query("SELECT path, step FROM core.parse_errors")) == [
        ("broken.py", "ast_ingest"),
        ("broken_bytes.py", "ast_ingest"),
    ]


def test_beside_extractors_of_the_ast_tree_cst_still_reads_what_ast_cannot_parse(tmp_path: Path) -> None:
    """A batch extracting for ast_ingest and cst_ingest at once (work done ahead for a dependant):
    the ast extractors keep their one problem row, cst_ingest reads the file all the same."""
    files = {
        "newer.py": GENERIC,
        "broken.py": "def good(): pass\ndef bad(:\n",
        "fine.py": "def f():  # TODO\n    pass\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    refs = tuple(FileRef(name, name[:-3], False, "h", len(text)) for name, text in files.items())
    batch = FileBatch(str(tmp_path), "repo", 10**6, refs, ("definitions", "cst"), ("ast_ingest", "cst_ingest"))
    outputs = dict(zip(files, extract_batch(batch), strict=True))
    broken, fine = outputs["broken.py"], outputs["fine.py"]
    assert [r[:3] for r in broken["definitions"].rows[Table.PARSE_ERRORS]] == [("broken.py", "ast_ingest", "syntax")]
    assert Table.PARSE_ERRORS not in broken["cst"].rows

    def column(output: Any, table: str, name: str) -> list[Any]:
        return output.tables[table].column(name).to_pylist()  # type: ignore[no-any-return]

    assert column(broken["cst"], Table.DEF_HEADERS, "qualname")[:1] == ["good"]
    assert set(column(outputs["newer.py"]["cst"], Table.DEF_HEADERS, "qualname")) == {"first", "Box", "Box.put"}
    assert len(fine["definitions"].rows[Table.AST_NODES]) == 2
    assert column(fine["cst"], Table.COMMENTS, "tag") == ["TODO"]


def test_name_site_columns_are_the_catalogs_and_give_the_same_table_as_the_rows() -> None:
    """Name sites come as columns (`CstRows.name_columns`, what a worker can hand to Arrow as they
    are) and as rows (`CstRows.names`): both the catalog's columns, in its order, one table."""
    from codeintel.ingestion.cst.extract import extract_cst
    from codeintel.storage.gateway import columns_to_arrow, to_arrow

    source = (USES["app/service.py"] + HEADERS + TRICKY).encode()
    found = extract_cst(source, repo="repo", path="app/service.py", module="app.service")
    assert list(found.name_columns) == list(CATALOG[Table.NAME_SITES].column_names)
    assert {len(values) for values in found.name_columns.values()} == {len(found.names)}
    assert len(found.names) > 100
    by_columns = columns_to_arrow(Table.NAME_SITES, found.name_columns)
    assert by_columns.cast(CATALOG[Table.NAME_SITES].arrow_schema).equals(to_arrow(Table.NAME_SITES, found.names))
    # the text that repeats row after row stays dictionary-encoded: half the bytes a worker sends
    encoded = {f.name for f in by_columns.schema if pa.types.is_dictionary(f.type)}
    assert encoded == {"path", "role", "enclosing_goid"}
    roles = set(by_columns.column("role").to_pylist())
    assert roles >= {"call", "read", "write", "import", "definition", "keyword_argument", "annotation", "decorator"}


@pytest.mark.parametrize(
    ("source", "names"),
    [
        (
            "caf\u00e9 = \u00e9t\u00e9(x)  # \u00e9\nprint(caf\u00e9.\u00e9t\u00e9)\n".encode(),
            ["café", "été", "x", "print", "café", "été"],
        ),
        (b"x = '\xff'\ny = x.real\n", ["x", "y", "x", "real"]),  # a byte that is not UTF-8 between names
        (b"ab\xffc = 1\nd = ab\n", ["ab", "c", "d", "ab"]),  # ... and where a name would be
        (b"pass\n", []),
    ],
    ids=["non-ascii", "bad-byte-in-string", "bad-byte-in-name", "no-names"],
)
def test_each_name_sites_text_is_the_source_at_its_position(source: bytes, names: list[str]) -> None:
    """Names are cut from the source in bulk where it is UTF-8, elsewhere one by one (U+FFFD)."""
    from codeintel.ingestion.cst.extract import extract_cst

    found = sorted(extract_cst(source, repo="repo", path="m.py", module="m").names, key=lambda row: row[1:3])
    assert [row[5] for row in found] == names
    lines = source.split(b"\n")
    for _, line, col, _, end_col, name, *_ in found:
        assert name == lines[line - 1][col:end_col].decode("utf-8", "replace")


@pytest.mark.parametrize(
    "source",
    [
        (USES["app/service.py"] + HEADERS + TRICKY).encode(),  # ASCII, no error: ends found in the source
        b"x = [a for in b]\nfoo(a b)\nprint x, y1_\n",  # errors, one an empty (missing) name
        "caf\u00e9 = 1\nv\u00e9lo_2 = caf\u00e9.x\n".encode(),  # not ASCII
    ],
    ids=["ascii", "syntax-errors", "non-ascii"],
)
def test_each_name_site_spans_its_identifier_node(source: bytes) -> None:
    """Where a name ends is the end of its tree-sitter node, however it is found (in bulk from
    the source's bytes, or read from each node where that would not be exact)."""
    from tree_sitter import Query, QueryCursor

    from codeintel.ingestion.cst.extract import extract_cst
    from codeintel.ingestion.cst.parser import python_language, python_parser

    tree = python_parser().parse(source)
    nodes = QueryCursor(Query(python_language(), "(identifier) @id")).captures(tree.root_node).get("id", [])
    expected = sorted((n.start_point[0] + 1, n.start_point[1], n.end_point[1]) for n in nodes)
    found = extract_cst(source, repo="repo", path="m.py", module="m").names
    assert sorted((line, col, end_col) for _, line, col, _, end_col, *_ in found) == expected
    assert len(expected) > 3
