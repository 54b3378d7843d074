"""Outlines of file versions: parsed whole (ast, tree-sitter where ast cannot), and updated
through a diff by parsing only what it touched, which must give the outline a whole parse
gives; and the log stream's parser and the line diff the merges use.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from codeintel.analysis.definitions import iter_definitions
from codeintel.errors import CodeIntelError
from codeintel.ingestion.history import outline as outline_module
from codeintel.ingestion.history.gitlog import log_args, parse_log, read_ahead, unquote_path
from codeintel.ingestion.history.lineage import Columns, line_diff
from codeintel.ingestion.history.outline import (
    TOO_LARGE,
    Def,
    Module,
    NoParse,
    apply_hunks,
    decode_source,
    match_region,
    pack_outline,
    parse_outline,
    parse_region,
    source_lines,
    unpack_outline,
    update_outline,
    walk,
)
from codeintel.storage.catalog import Table

BASE = textwrap.dedent(
    '''
    """A module."""
    import os

    CONSTANT = 1


    def helper(x, y=2):
        """Help."""
        if x:
            return y
        return x + y


    @decorator(arg=1)
    class Engine(Base):
        """An engine."""

        speed = 3

        def start(self):
            def inner():
                return 1

            return inner()

        @property
        def stop(self):
            return None

        async def wait(self):
            await self.stop


    if os.environ.get("X"):
        def conditional():
            pass
    else:
        def conditional():
            return 2


    def last(a,
             b):
        return (a,
                b)
    '''
).lstrip("\n")


def signature(root: Def) -> list[tuple[str, str, int, int, int, int]]:
    return [(d.qualname, d.kind, d.start, d.line, d.body, d.end) for d in walk(root)]


def outline_of(text: str) -> Module:
    return parse_outline(source_lines(text))[0]


def updated(old_text: str, new_text: str) -> Def:
    old_lines, new_lines = source_lines(old_text), source_lines(new_text)
    hunks = line_diff(old_lines, new_lines)
    assert apply_hunks(old_lines, hunks, "utf-8") == new_lines
    update = update_outline(outline_of(old_text), hunks, lambda: new_lines, len(old_lines), len(new_lines))
    assert update.root.size == parse_outline(new_lines)[0].size, "the size follows the hunks"
    # what the matching reads: each old definition in one region at most, each region's new
    # definitions in the new outline (a region parsed again wider replaces the narrower one)
    in_tree = {id(d) for d in walk(update.root)}
    olds = [id(d) for region in update.regions for d in region.old_defs]
    assert len(olds) == len(set(olds))
    assert all(id(d) in in_tree for region in update.regions for d in region.new_defs)
    return update.root


def test_the_outline_has_the_definitions_core_ast_nodes_has() -> None:
    import ast

    expected = [
        (d.qualname, d.kind, d.start_line, d.end_line)
        for d in iter_definitions(ast.parse(BASE), "m", "m.py", len(BASE.splitlines()))
        if d.kind != "module"
    ]
    assert [(d.qualname, d.kind, d.start, d.end) for d in walk(outline_of(BASE))] == expected


def test_python_2_code_gets_its_definitions_from_tree_sitter_with_the_spans_ast_gives_python_3() -> None:
    py3 = "def f(x):\n    print(x)\n\n\nclass A(object):\n    def m(self):\n        try:\n            pass\n        except E as e:\n            raise\n"
    py2 = py3.replace("print(x)", "print x").replace("except E as e:", "except E, e:")
    root, parser = parse_outline(source_lines(py2))
    assert parser == "tree-sitter"
    assert signature(root) == signature(outline_of(py3))


def test_undecodable_bytes_and_lone_carriage_returns_keep_git_line_numbers() -> None:
    data = b"def f():\n    return '\xe9'\r\n\ndef g():  # \rnot a line break for git\n    pass\n"
    lines = source_lines(decode_source(data))
    assert len(lines) == data.count(b"\n")
    assert [d.qualname for d in walk(parse_outline(lines)[0])] == ["f", "g"]
    assert [d.start for d in walk(parse_outline(lines)[0])] == [1, 4]


def ast_outline(text: str) -> list[tuple[str, str, int, int, int, int, int, int]]:
    """What `ast` makes of a whole version: the outline parse_outline must give when tree-sitter
    parses it clean."""
    import ast

    root = Def("", "", "module", 1, 1, 1, 1, -1, 0)
    root.children = outline_module._ast_defs(ast.parse(text).body, 0, root)
    return [(d.qualname, d.kind, d.start, d.line, d.body, d.end, d.col, d.body_col) for d in walk(root)]


def test_tree_sitter_and_ast_give_the_same_outline_of_every_source_file_here() -> None:
    """Tree-sitter parses what it parses clean (twice as fast): its spans and columns must be
    the ones `ast` gives, file by file, over this repository's own code."""
    repo = Path(__file__).resolve().parents[2]
    checked = 0
    for path in sorted([*repo.glob("codeintel/**/*.py"), *repo.glob("tests/**/*.py"), *repo.glob("bench/*.py")]):
        text = path.read_text(encoding="utf-8")
        root, parser = parse_outline(source_lines(text))
        assert parser == "tree-sitter", path
        got = [(d.qualname, d.kind, d.start, d.line, d.body, d.end, d.col, d.body_col) for d in walk(root)]
        assert got == ast_outline(text), path
        checked += 1
    assert checked > 100


# tree-sitter parses these without an error; Python stops at their indentation
INDENTATION_ERRORS = {
    "a_header_without_a_body": "x = 1\nclass Mapper(object):\ny = 2\n",
    "an_unexpected_indent": "x = 1\n    y = 2\n",
    "a_first_line_indented": "  x = 1\ny = 2\n",
    "a_dedent_to_no_enclosing_level": "def f():\n    if x:\n        a = 1\n      b = 2\n",
    "a_method_dedented_off_its_class": "class A:\n    def f(self):\n            x = 1\n        y = 2\n",
    "a_block_of_comments_only": "if x:\n    # nothing\nelse:\n    pass\n",
}


@pytest.mark.parametrize("text", list(INDENTATION_ERRORS.values()), ids=list(INDENTATION_ERRORS))
def test_what_python_rejects_for_its_indentation_is_no_region_and_no_clean_outline(text: str) -> None:
    import ast

    with pytest.raises(IndentationError):
        ast.parse(text)
    lines = source_lines(text)
    with pytest.raises(NoParse):
        parse_region(lines, 1, len(lines), Def("", "", "module", 1, 1, 1, len(lines), -1, 0))
    wrapped = ["class Box:", *("    " + line for line in lines)]
    box = parse_outline(["class Box:", "    pass"])[0].children[0]
    with pytest.raises(NoParse):
        parse_region(wrapped, 2, len(wrapped), box)
    assert parse_outline(lines)[1] == "tree-sitter"  # errors and all: `ast` could not either


EDITS = {
    "body_line": lambda s: s.replace("return x + y", "return x * y"),
    "last_line_of_a_function": lambda s: s.replace("        return None", "        return 0"),
    "append_a_method_after_a_blank": lambda s: s.replace(
        "        await self.stop\n", "        await self.stop\n\n    def more(self):\n        return 4\n"
    ),
    "append_code_to_a_method": lambda s: s.replace("        await self.stop\n", "        await self.stop\n        x = 1\n"),
    "add_a_decorator": lambda s: s.replace("    def start(self):", "    @cached\n    def start(self):"),
    "edit_a_signature": lambda s: s.replace("def helper(x, y=2):", "def helper(\n    x,\n    y=3,\n):"),
    "rename_a_function": lambda s: s.replace("def helper(", "def assist("),
    "delete_a_method": lambda s: s.replace("    @property\n    def stop(self):\n        return None\n\n", ""),
    "dedent_a_nested_function": lambda s: s.replace(
        "        def inner():\n            return 1\n\n        return inner()\n", "        return 1\n\n    def inner(self):\n        return 1\n"
    ),
    "docstring_edit": lambda s: s.replace('    """Help."""', '    """Help.\n\n    def not_a_function():\n    """'),
    "new_function_between_two": lambda s: s.replace("\n\n@decorator", "\n\ndef between():\n    return 0\n\n\n@decorator"),
    "new_code_at_the_end": lambda s: s + "\n\nclass Tail:\n    pass\n",
    "delete_the_end": lambda s: s[: s.index("def last(")],
    "module_code_after_a_class": lambda s: s.replace("\n\nif os.environ", "\nx = [\n    1,\n]\n\nif os.environ"),
    "continuation_line_after_a_function": lambda s: s.replace("CONSTANT = 1", "CONSTANT = (\n    1\n)"),
    "edit_inside_a_conditional_block": lambda s: s.replace("            return 2", "            return 3"),
    "class_header_and_body": lambda s: s.replace("class Engine(Base):", "class Motor(Base, Mixin):").replace("speed = 3", "speed = 4"),
    "method_becomes_module_function": lambda s: s.replace(
        "    async def wait(self):\n        await self.stop\n", "\nasync def wait(self):\n    await self.stop\n"
    ),
    # the statement holding a nested definition deleted: it now continues the class before it
    "block_header_deleted_before_a_nested_function": lambda s: s.replace(
        'if os.environ.get("X"):\n    def conditional():\n        pass\nelse:\n', ""
    ),
    # a block of functions becomes a class, the second one's signature edited in place
    "block_becomes_a_class": lambda s: s.replace(
        'if os.environ.get("X"):\n    def conditional():\n        pass\nelse:\n    def conditional():',
        "class Holder:\n    def conditional(self):\n        pass\n\n    def conditional(self, x):",
    ),
    # code added after a nested function: its body's end first, then its block's
    "function_end_then_its_block": lambda s: s.replace("        return 2\n", "        return 2\n        y = 1\n    z = 2\n"),
}


@pytest.mark.parametrize("edit", list(EDITS.values()), ids=list(EDITS))
def test_an_updated_outline_is_the_outline_of_the_new_version(edit: object) -> None:
    new = edit(BASE)  # type: ignore[operator]
    assert signature(updated(BASE, new)) == signature(outline_of(new))


def every_field(root: Def) -> list[tuple[object, ...]]:
    """Everything an outline holds, definition by definition, with the tree's shape."""
    slots = ("name", "qualname", "kind", "start", "line", "body", "end", "col", "body_col")
    fields: list[tuple[object, ...]] = [(*(getattr(root, s) for s in slots), getattr(root, "size", None))]
    for d in walk(root):
        fields.append((*(getattr(d, s) for s in slots), [c.qualname for c in d.children]))
    return fields


@pytest.mark.parametrize("edit", [None, *EDITS.values()], ids=["parsed", *EDITS])
def test_an_outline_stored_and_read_back_is_the_same_outline(edit: object) -> None:
    """What `history.head_files` keeps of HEAD's versions, so an incremental walk parses none
    of them again: a parsed outline, or one updated through a diff, comes back field for field."""
    text = BASE if edit is None else edit(BASE)  # type: ignore[operator]
    root = outline_of(text) if edit is None else updated(BASE, text)
    assert isinstance(root, Module)
    back = unpack_outline(len(source_lines(text)), root.size, *pack_outline(root))
    assert every_field(back) == every_field(root)
    assert len(every_field(root)) > 5


def test_odd_outlines_stored_and_read_back_are_the_same_outline() -> None:
    """Python 2 code (tree-sitter's outline), names that are not UTF-8, an empty file and a
    version past the size limit (no definitions) come back as they were."""
    sources = [
        "class Old:\n    def f(self):\n        print 'x'\n\ndef g():\n    exec 'y'\n",
        "def caf\udce9():\n    pass\n",
        "",
    ]
    for text in sources:
        lines = source_lines(text)
        root = parse_outline(lines)[0]
        back = unpack_outline(len(lines), root.size, *pack_outline(root))
        assert every_field(back) == every_field(root), text
    large, parser = parse_outline(source_lines(BASE), max_bytes=10)
    assert parser == TOO_LARGE
    back = unpack_outline(len(source_lines(BASE)), large.size, *pack_outline(large))
    assert every_field(back) == every_field(large) and not back.children


def test_random_edits_give_the_outline_of_the_new_version() -> None:
    """Edits made of lines of the file itself (moved, copied, dropped), kept when the result
    still parses: the update must agree with a whole parse every time."""
    checked = 0
    for text in valid_edits(random.Random(7), 600, 3, delete=0.5):
        checked += 1
        assert signature(updated(BASE, text)) == signature(outline_of(text)), text
    assert checked > 50


def test_random_edits_with_lines_of_every_depth_give_the_outline_of_the_new_version() -> None:
    """As above, with single lines of code, headers and comments at each depth inserted too
    (a header deleted or added before nested definitions, a body's end moved): 2,000 edits."""
    lines_of_every_depth = [
        "x = 1", "    y = 2", "        z = 3", "", "# c", "    # c", "def f():", "    def g(self):", "class K:",
        "    pass", "        pass", "@d", "    @d", "else:", "    else:",
    ]  # fmt: skip
    checked = 0
    for text in valid_edits(random.Random(11), 2000, 4, delete=0.4, insert=0.15, inserted=lines_of_every_depth):
        checked += 1
        assert signature(updated(BASE, text)) == signature(outline_of(text)), text
    assert checked > 300


def valid_edits(
    rng: random.Random, tries: int, most: int, *, delete: float, insert: float = 0.0, inserted: Sequence[str] = ()
) -> Iterator[str]:
    """Versions of BASE that parse, each made of 1 to `most` edits: lines deleted (a `delete`
    share of the edits), one line of `inserted` added (an `insert` share), lines of BASE copied
    in (the rest)."""
    import ast

    base = source_lines(BASE)
    for _ in range(tries):
        lines = list(base)
        for _ in range(rng.randint(1, most)):
            at = rng.randrange(len(lines) + 1)
            draw = rng.random()
            if draw < delete and lines:
                del lines[at : at + rng.randint(1, 4)]
            elif draw < delete + insert:
                lines[at:at] = [rng.choice(inserted)]
            else:
                start = rng.randrange(len(base))
                lines[at:at] = base[start : start + rng.randint(1, 5)]
        text = "\n".join(lines) + "\n"
        try:
            ast.parse(text)
        except SyntaxError:
            continue
        yield text


def test_a_renamed_class_keeps_its_identity_through_the_lines_it_kept() -> None:
    new = BASE.replace("class Engine(Base):", "class Motor(Base):")
    old_lines, new_lines = source_lines(BASE), source_lines(new)
    hunks = line_diff(old_lines, new_lines)
    update = update_outline(outline_of(BASE), hunks, lambda: new_lines, len(old_lines), len(new_lines))
    pairs = {(o.qualname, n.qualname) for region in update.regions for o, n in match_region(region, hunks, update.shift)}
    assert ("Engine", "Motor") in pairs
    assert ("Engine.start", "Motor.start") in pairs


def test_a_version_past_the_size_limit_is_never_parsed_and_has_no_definitions() -> None:
    small = source_lines(BASE)
    big = source_lines(BASE + "DATA = [\n" + "    1,\n" * 2000 + "]\n")
    limit = len(BASE.encode()) + 100
    small_root, parser = parse_outline(small, limit)
    assert parser != TOO_LARGE and walk(small_root)
    big_root, parser = parse_outline(big, limit)
    assert parser == TOO_LARGE and walk(big_root) == [] and big_root.size == parse_outline(big)[0].size

    def never() -> list[str]:
        raise AssertionError("the lines of a version that is not parsed were made")

    # grows past it: one region, the whole file, every old definition in it and none new
    grown = update_outline(small_root, line_diff(small, big), never, len(small), len(big), limit)
    assert grown.parser == TOO_LARGE and walk(grown.root) == [] and grown.root.size == big_root.size
    assert [(r.old_defs, r.new_defs) for r in grown.regions] == [(walk(small_root), [])]
    # past it still: nothing parsed, nothing to match
    bigger = [*big, "X = 1"]
    still = update_outline(grown.root, line_diff(big, bigger), never, len(big), len(bigger), limit)
    assert still.parser == TOO_LARGE and [(r.old_defs, r.new_defs) for r in still.regions] == [([], [])]
    # back under it: parsed whole, as a version read afresh
    back = update_outline(still.root, line_diff(bigger, small), lambda: small, len(bigger), len(small), limit)
    assert signature(back.root) == signature(small_root) and back.root.size == small_root.size
    # without a limit, the same growth is an ordinary update
    plain = update_outline(small_root, line_diff(small, big), lambda: big, len(small), len(big))
    assert signature(plain.root) == signature(parse_outline(big)[0])


def test_line_diff_applies_back_to_the_new_lines() -> None:
    rng = random.Random(3)
    for _ in range(300):
        old = [rng.choice("abcdefg") for _ in range(rng.randint(0, 30))]
        new = list(old)
        for _ in range(rng.randint(0, 5)):
            if new and rng.random() < 0.5:
                del new[rng.randrange(len(new))]
            else:
                new.insert(rng.randint(0, len(new)), rng.choice("abcxyz"))
        assert apply_hunks(old, line_diff(old, new), "utf-8") == new


# ------------------------------------------------------------------------------------ the stream


def _git(repo: Path, *args: str) -> None:
    env_args = ["-c", "user.name=T", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *env_args, *args], cwd=repo, check=True, capture_output=True)


def test_the_log_parser_reads_renames_odd_names_deletions_and_missing_final_newlines(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    _git(repo, "init", "-q")
    odd = 'we"ird\tname.py'
    (repo / "a.py").write_text("def f():\n    return 1\n" + "x = 1\n" * 20)
    (repo / odd).write_text("def g():\n    pass")  # no final newline
    (repo / "caf\u00e9.py").write_text("y = 2\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    (repo / "a.py").rename(repo / "b.py")
    (repo / "b.py").write_text("def f():\n    return 2\n" + "x = 1\n" * 20)
    (repo / odd).write_text("def g():\n    return 0")
    (repo / "caf\u00e9.py").unlink()
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "two")
    out = subprocess.run(["git", *log_args(from_stdin=False)], cwd=repo, capture_output=True, check=True).stdout
    first, second = list(parse_log(io.BytesIO(out)))
    assert {f.new_path for f in first.files} == {"a.py", odd, "caf\u00e9.py"}
    changes = {(f.status, f.old_path, f.new_path) for f in second.files}
    assert changes == {("R", "a.py", "b.py"), ("M", odd, odd), ("D", "caf\u00e9.py", None)}
    renamed = next(f for f in second.files if f.status == "R")
    assert [(h.old_start, h.old_count, h.removed, h.added) for h in renamed.hunks] == [(2, 1, [b"    return 1"], [b"    return 2"])]
    weird = next(f for f in second.files if f.new_path == odd)
    assert [(h.removed, h.added) for h in weird.hunks] == [([b"    pass"], [b"    return 0"])]


def test_quoted_paths_are_unquoted() -> None:
    assert unquote_path(b'"a\\tb\\"c\\\\d.py"') == 'a\tb"c\\d.py'
    assert unquote_path(b'"caf\\303\\251.py"') == "caf\u00e9.py"
    assert unquote_path(b"plain.py") == "plain.py"


def test_a_region_parsed_again_wider_replaces_the_regions_it_swallows() -> None:
    """Definitions inside `if`/`else` blocks: an edit in the else block cannot be parsed alone
    (it starts inside the block) and is widened over its neighbours, past a region already
    parsed in the if block: that region's definitions must not be matched twice."""
    defs_if = "".join(f"    def a{i}():\n        return {i}\n\n" for i in range(6))
    defs_else = "".join(f"    def b{i}():\n        return {i}\n\n" for i in range(6))
    old = f"import sys\n\nif sys.version_info > (3,):\n{defs_if}    X = 1\nelse:\n{defs_else}    Y = 2\n"
    new = old.replace("    def a1():\n        return 1\n\n", "").replace("    Y = 2\n", "    def y():\n        return 2\n")
    assert signature(updated(old, new)) == signature(outline_of(new))


def test_module_code_neither_parser_takes_is_parsed_whole_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A region of module statements that tree-sitter and `ast` both refuse (a syntax error,
    not an indentation one) holds the same error however wide: the version is parsed whole
    at once, not after a chain of wider and wider regions (sqlalchemy's history has hundreds:
    broken commits, Python 2 test modules)."""
    defs = [f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(24)]
    old = "".join(defs)
    new = "".join(defs[:12]) + "def g():\n    pass\n) = 1\n\n\n" + "".join(defs[12:])
    calls: list[tuple[int, int]] = []
    real = outline_module.parse_region

    def counted(lines: Sequence[str], lo: int, hi: int, container: Def) -> Any:
        calls.append((lo, hi))
        return real(lines, lo, hi, container)

    monkeypatch.setattr(outline_module, "parse_region", counted)
    assert signature(updated(old, new)) == signature(outline_of(new))
    assert len(calls) == 1, calls


def test_a_clause_of_a_module_level_block_edited_after_a_nested_definition_is_widened_not_parsed_whole() -> None:
    """Definitions nested in a module-level `try` are children of the module: the run after
    `a2` begins with the `except` clause, a syntax error alone, which parses once widened over
    the `try` (no whole parse of the version)."""
    old = textwrap.dedent("""\
        import sys

        try:
            def a():
                return 1

            def a2():
                return 1
        except ImportError:
            def b():
                return 2
    """) + "".join(f"\n\ndef tail{i}():\n    return {i}\n" for i in range(8))
    new = old.replace("except ImportError:", "except (ImportError, OSError):")
    old_lines, new_lines = source_lines(old), source_lines(new)
    update = update_outline(outline_of(old), line_diff(old_lines, new_lines), lambda: new_lines, len(old_lines), len(new_lines))
    assert signature(update.root) == signature(outline_of(new))
    assert update.parser is None and update.widened > 0, "parsed by widened regions, not whole"


# ------------------------------------------------------------------------------------ read-ahead

_PRODUCER = "import sys\nfor i in range(40):\n    sys.stdout.buffer.write(bytes([65 + i % 26]) * (1 << 20))\n"


def test_the_log_stream_read_ahead_gives_every_byte_in_order() -> None:
    with subprocess.Popen([sys.executable, "-c", _PRODUCER], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with read_ahead(proc.stdout) as ahead:
            data = b"".join(iter(ahead.read, b""))
            assert ahead.read() == b""
    assert len(data) == 40 << 20
    assert [data[i << 20] for i in range(40)] == [65 + i % 26 for i in range(40)]


def test_the_read_ahead_hands_over_the_first_commits_before_a_whole_chunk_is_written() -> None:
    """git takes a while to write the log's first MiB: the walk gets what is there already."""
    producer = "import sys, time\nsys.stdout.buffer.write(b'first'); sys.stdout.flush(); time.sleep(30)\n"
    with subprocess.Popen([sys.executable, "-c", producer], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with read_ahead(proc.stdout) as ahead:
            got: list[bytes] = []
            reader = threading.Thread(target=lambda: got.append(ahead.read()), daemon=True)
            reader.start()
            reader.join(timeout=10)
            proc.kill()  # (the stream ends: the read-ahead's thread is free to stop)
        assert got == [b"first"]


@pytest.mark.skipif(not hasattr(__import__("fcntl"), "F_GETPIPE_SZ"), reason="no pipe sizes on this system")
def test_the_read_ahead_widens_the_pipe_it_reads_so_it_wakes_once_a_mib() -> None:
    import fcntl

    if int(Path("/proc/sys/fs/pipe-max-size").read_text()) < 1 << 20:
        pytest.skip("this system keeps pipes under 1 MiB: the read-ahead leaves them as they are")
    with subprocess.Popen([sys.executable, "-c", _PRODUCER], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert fcntl.fcntl(proc.stdout.fileno(), fcntl.F_GETPIPE_SZ) < 1 << 20
        with read_ahead(proc.stdout) as ahead:
            assert fcntl.fcntl(proc.stdout.fileno(), fcntl.F_GETPIPE_SZ) == 1 << 20
            assert len(b"".join(iter(ahead.read, b""))) == 40 << 20


def test_a_reader_that_stops_early_leaves_no_thread_behind() -> None:
    """A walk that fails half way leaves the block: the thread reading ahead stops (it is not
    left waiting on a full queue) and the rest of the stream is still the tool's to drain."""
    with subprocess.Popen([sys.executable, "-c", _PRODUCER], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with pytest.raises(RuntimeError), read_ahead(proc.stdout) as ahead:
            ahead.read()
            raise RuntimeError("the walk failed")
        assert not any(t.name == "codeintel-log-read-ahead" for t in threading.enumerate())
        proc.stdout.read()
    assert proc.returncode == 0


def test_an_error_reading_the_stream_is_raised_to_the_reader() -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, _: Any) -> int:
            raise OSError("the pipe broke")

    with read_ahead(io.BufferedReader(Broken())) as ahead, pytest.raises(OSError, match="the pipe broke"):
        ahead.read()


def test_spooled_rows_are_written_batch_by_batch_and_read_back_whole(tmp_path: Path) -> None:
    """A cold walk apart spools its rows: each full chunk goes to the file (none is held), and
    the file read back is the table the rows make in memory."""
    names = ("path", "blob", "file_id", "n_lines", "lineages", "name_keys", "created_by")
    rows = [(f"pkg/m{i % 3}.py", f"{i:040x}", f"{i % 2:016x}", i, bytes([i]) * 8, b"", f"{i:040x}") for i in range(7)]
    spooled, held = Columns(Table.VERSIONS, names, chunk=2), Columns(Table.VERSIONS, names, chunk=2)
    spooled.spool(tmp_path / "versions.arrow")
    schema_only = (tmp_path / "versions.arrow").stat().st_size
    for row in rows:
        spooled.add(*row)
        held.add(*row)
    assert (tmp_path / "versions.arrow").stat().st_size > schema_only  # full chunks written already
    with pytest.raises(CodeIntelError):
        spooled.table()
    spooled.close()
    with pa.memory_map(str(tmp_path / "versions.arrow")) as source:
        back = pa.ipc.open_stream(source).read_all()

    def plain(column: Any) -> list[Any]:
        return (column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column).to_pylist()

    assert back.num_rows == len(spooled) == 7
    assert {n: plain(back.column(n)) for n in names} == {n: held.values(n) for n in names}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # code added between a header and the comments before the first statement: the body's first line moves up
        ("def f(x):\n    # say why\n\n    return x\n", "def f(x):\n    y = 1\n    # say why\n\n    return x\n"),
        # a header and a first statement written in one hunk
        ("def f(x):\n    # say why\n    return x\n", "def f(x, z):\n    y = z\n    # say why\n    return x\n"),
        # code added after the blank lines that follow a header
        ("def f(x,\n      y):\n\n\n    return x\n", "def f(x,\n      y):\n\n    z = 1\n\n    return x\n"),
        # a signature edited across lines: the header only
        ("def f(\n    x,\n):\n    # c\n    return x\n", "def f(\n    x,\n    z=1,\n):\n    # c\n    return x\n"),
    ],
    ids=["code_before_the_comments", "header_and_statement", "code_after_blank_lines", "signature_lines"],
)
def test_lines_added_between_a_header_and_its_first_statement(old: str, new: str) -> None:
    text = "class A:\n" + "".join(f"    {line}\n" if line else "\n" for line in old.splitlines())
    after = "class A:\n" + "".join(f"    {line}\n" if line else "\n" for line in new.splitlines())
    assert signature(updated(text, after)) == signature(outline_of(after))


def test_a_block_of_functions_that_becomes_a_class_takes_them_all_in() -> None:
    """`if flag:` over two functions becomes `class Hooks:` (the first one's header in the same
    hunk, the second one's signature edited in a hunk of its own): both are the class's methods."""
    old = "if flag:\n    import uuid\n\n    def a(node):\n        return 1\n\n    def b(node):\n        return 2\n"
    new = "class Hooks:\n    def a(self, node):\n        return 1\n\n    def b(self, node):\n        return 2\n"
    assert signature(updated(old, new)) == signature(outline_of(new))
    assert [d.qualname for d in walk(outline_of(new))] == ["Hooks", "Hooks.a", "Hooks.b"]


def test_a_definition_a_merge_has_as_its_first_parent_had_it_is_the_same_lines_in_the_same_place() -> None:
    """What a merge took from another parent (`lineage._not_in_place`): a definition edited, one
    moved among its neighbours with its text unchanged (a diff marks its lines), and one its
    first parent has not; those only shifted by lines added above them, or untouched, are as they
    were, whether looked at all (the versions' common start and end skipped) or one by one."""
    from codeintel.ingestion.history.lineage import _not_in_place
    from codeintel.ingestion.history.versions import Source, name_key

    old = textwrap.dedent(
        '''\
        def kept(a):
            return a


        def edited(b):
            return b


        def outer():
            x = 1

            def moved():
                return 2

            y = 3
            return x + y


        def shifted(c):
            return c
        '''
    )
    new = textwrap.dedent(
        '''\
        import os


        def kept(a):
            return a


        def edited(b):
            return b + 1


        def outer():
            x = 1
            y = 3

            def moved():
                return 2

            return x + y


        def shifted(c):
            return c


        def added():
            return 4
        '''
    )

    def source(text: str) -> Source:
        lines = source_lines(text)
        root, _ = parse_outline(lines)
        for d in walk(root):
            d.lineage = name_key(d.qualname)  # a lineage per name: the same definitions
        return Source(root, lines, "utf-8")

    new_source, old_source = source(new), source(old)
    differ = {d.qualname for d in _not_in_place(lambda _: [], new_source, "", old_source, "")}
    assert differ == {"edited", "outer", "outer.moved", "added"}
    one_by_one = _not_in_place(lambda _: [], new_source, "", old_source, "", walk(new_source.root))
    assert {d.qualname for d in one_by_one} == differ
    assert {d.qualname for d in _not_in_place(lambda _: [], new_source, "", None, None)} == {
        d.qualname for d in walk(new_source.root)
    }
