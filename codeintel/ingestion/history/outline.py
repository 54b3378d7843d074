"""The definitions of one version of a Python file (its outline), and its update through a diff.

An outline is a tree of `Def`s (classes, functions, methods; the module is the root) with the
spans `core.ast_nodes` gives them: qualified name (enclosing classes and functions, compound
statements transparent), kind, first line (decorators included), `def`/`class` line, first
body line and last line.  `parse_outline` parses a whole version with the running Python's
`ast` and, where it cannot (Python 2 code, syntax of a newer Python, NUL bytes), with
tree-sitter, which parses anything: no version is left without spans.

`update_outline` derives the outline of the new version from the old one and the `-U0` hunks
between them, parsing only what the diff touched: a hunk strictly inside a definition's body
is handled inside it; elsewhere, the region between the nearest untouched definitions is
parsed again (alone, or wrapped in `if 1:` when indented).  A hunk that changes no `def`,
`class` or decorator line, no triple quote and no indentation below its definition's body
needs no parse at all.  A region that does not parse as a whole sequence of statements at the
body's indentation falls back to parsing the whole new version.  Definitions outside every
region keep their identity (`Def` objects are shared or copied with shifted lines); those of a
region are matched afterwards by the lines they kept (`Region`).
"""

from __future__ import annotations

import ast
import codecs
import re
import sys
import warnings
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from codeintel.ingestion.cst.parser import python_parser
from codeintel.ingestion.history.gitlog import Hunk

CLASS, FUNCTION, METHOD, MODULE = "class", "function", "method", "module"
TOO_LARGE = "too_large"  # what "parsed" a version too large to have definitions (`parse_outline`)


class Def:
    """One definition of an outline (the root is the module).  Lines are 1-based, git's lines
    (split at `\\n` only).  Never changed once built: versions share unchanged subtrees."""

    __slots__ = ("body", "body_col", "children", "col", "end", "kind", "line", "lineage", "name", "qualname", "start")

    def __init__(
        self,
        name: str,
        qualname: str,
        kind: str,
        start: int,
        line: int,
        body: int,
        end: int,
        col: int,
        body_col: int,
        children: list[Def] | None = None,
        lineage: int = 0,
    ) -> None:
        self.name = name
        self.qualname = qualname
        self.kind = kind
        self.start = start
        self.line = line
        self.body = body
        self.end = end
        self.col = col
        self.body_col = body_col
        self.children: list[Def] = children if children is not None else []
        self.lineage = lineage

    def shifted(self, delta: int) -> Def:
        """A copy `delta` lines further down (its whole subtree; the same object for 0)."""
        return self if delta == 0 else _shifted(self, delta)

    def __repr__(self) -> str:
        return f"Def({self.qualname!r}, {self.kind}, {self.start}-{self.end})"


class Module(Def):
    """An outline's root: the module, and the size of its version in bytes (UTF-8: a version
    whose lines were decoded from another encoding counts them re-encoded) to tell a version
    too large to have definitions (`parse_outline`'s `max_bytes`) without reading it again."""

    __slots__ = ("size",)

    def __init__(self, n_lines: int, size: int) -> None:
        super().__init__("", "", MODULE, 1, 1, 1, max(n_lines, 1), -1, 0)
        self.size = size


_new_def = object.__new__


def _shifted(d: Def, delta: int) -> Def:
    # slots set directly: versions copy millions of definitions (a call of __init__ costs half again)
    new: Def = _new_def(Def)
    new.name, new.qualname, new.kind, new.col, new.body_col = d.name, d.qualname, d.kind, d.col, d.body_col
    new.start, new.line, new.body, new.end = d.start + delta, d.line + delta, d.body + delta, d.end + delta
    new.lineage = d.lineage
    new.children = [_shifted(c, delta) for c in d.children] if d.children else []
    return new


def walk(root: Def) -> list[Def]:
    """Every definition under `root` in source order (preorder), the root excluded."""
    out: list[Def] = []
    stack = root.children[::-1]
    pop, push, add = stack.pop, stack.extend, out.append
    while stack:
        node = pop()
        add(node)
        if node.children:
            push(node.children[::-1])
    return out


def pack_outline(root: Module) -> tuple[bytes, bytes]:
    """An outline as stored (`history.head_files`, so the next walk need not parse HEAD's
    versions again): per definition in preorder, its parent's position (-1: the module) and its
    start, line, body, end, col and body_col (int32); and its kind's letter, name and qualified
    name (NUL-separated, UTF-8)."""
    numbers = array("i")
    texts: list[str] = []
    stack: list[tuple[Def, int]] = [(c, -1) for c in reversed(root.children)]
    i = 0
    while stack:  # (preorder, as `walk`)
        d, parent = stack.pop()
        numbers.extend((parent, d.start, d.line, d.body, d.end, d.col, d.body_col))
        texts += (d.kind[0] + d.name, d.qualname)
        stack.extend((c, i) for c in reversed(d.children))
        i += 1
    return numbers.tobytes(), "\0".join(texts).encode("utf-8", "surrogatepass")


def unpack_outline(n_lines: int, size: int, numbers: bytes, texts: bytes) -> Module:
    """The outline `pack_outline` stored (the module's line count and size apart)."""
    root = Module(n_lines, size)
    values = array("i")
    values.frombytes(numbers)
    names = texts.decode("utf-8", "surrogatepass").split("\0") if texts else []
    defs: list[Def] = []
    for i in range(len(values) // 7):
        parent, start, line, body, end, col, body_col = values[7 * i : 7 * i + 7]
        kind_name, qualname = names[2 * i], names[2 * i + 1]
        d = Def(sys.intern(kind_name[1:]), sys.intern(qualname), _KINDS[kind_name[0]], start, line, body, end, col, body_col)
        (root if parent < 0 else defs[parent]).children.append(d)
        defs.append(d)
    return root


_KINDS = {"c": CLASS, "f": FUNCTION, "m": METHOD}


def ordinals(defs: Sequence[Def]) -> list[int]:
    """Same-name ordinals of `defs` (preorder): 0, 1, ... per qualified name, as core.goids."""
    seen: dict[str, int] = {}
    out = []
    for d in defs:
        n = seen.get(d.qualname, 0)
        seen[d.qualname] = n + 1
        out.append(n)
    return out


# ------------------------------------------------------------------------------------ source


_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_LONE_CR = re.compile(r"\r(?!\n)")


def source_encoding(first_lines: Sequence[bytes]) -> str:
    """The encoding a PEP 263 cookie in the first two lines names (UTF-8 without one)."""
    for line in first_lines[:2]:
        found = _COOKIE.match(line)
        if found:
            name = found.group(1).decode("ascii", "replace")
            try:
                if codecs.lookup(name)._is_text_encoding:  # type: ignore[attr-defined]
                    return name
            except LookupError:
                pass
            return "utf-8"
    return "utf-8"


def decode_source(data: bytes) -> str:
    """A version's text for finding its definitions: decoded by its PEP 263 cookie (UTF-8
    otherwise; undecodable bytes replaced), lone carriage returns blanked so that line N
    stays git's line N (the parsers would count them as line breaks)."""
    encoding = source_encoding(data.split(b"\n", 2)[:2])
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    text = data.decode(encoding, "replace")
    if "\r" in text:
        text = _LONE_CR.sub(" ", text)
    return text


def decode_line(raw: bytes, encoding: str) -> str:
    """One line of a patch as `decode_source` would give it within its file."""
    text = raw.decode(encoding, "replace")
    if "\r" in text:
        text = text[:-1].replace("\r", " ") + text[-1] if text.endswith("\r") else text.replace("\r", " ")
    return text


def apply_hunks(old: Sequence[str], hunks: Sequence[Hunk], encoding: str) -> list[str]:
    """The new version's lines: `old` with the `-U0` hunks applied (their added lines decoded)."""
    out: list[str] = []
    at = 0  # old lines copied so far
    for h in hunks:
        keep = h.old_start - 1 if h.old_count else h.old_start
        out.extend(old[at:keep])
        out.extend(decode_line(raw, encoding) for raw in h.added)
        at = keep + h.old_count
    out.extend(old[at:])
    if out and out[0].startswith("\ufeff"):
        out[0] = out[0][1:]
    return out


def source_lines(text: str) -> list[str]:
    """Git's lines of `text` (split at `\\n` only; line N is item N - 1)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


# ------------------------------------------------------------------------------------ parsing


class NoParse(Exception):
    """A region did not parse as a sequence of whole statements."""


class _AskAst(NoParse):
    """Tree-sitter found no error where Python may find one (an indentation error): `ast`
    decides."""


class _Broken(NoParse):
    """Neither parser takes the region: `ast` finds a syntax error other than of indentation,
    and tree-sitter errors between its statements.  In a run of the module that begins a
    top-level statement (`_starts_top_level`) the error is most often the file's (a broken
    commit, Python 2 code), and wider runs, parsed one after the other, would all fail: the
    version is parsed whole at once (where errors are allowed).  Where the run only cuts a
    block at its end (a `try:` whose `except` comes after a nested definition), the whole parse
    gives the outline the wider run would; its definitions are matched over the whole file."""


def parse_outline(lines: Sequence[str], max_bytes: int = 0) -> tuple[Module, str]:
    """The outline of a whole version (its lines), and the parser that made it: `tree-sitter`
    where it parses it clean (twice as fast as `ast`, the same spans), `ast` where tree-sitter
    finds errors and `ast` none (syntax newer than tree-sitter's grammar), and `tree-sitter`
    again, its tree errors and all, where neither parses it clean (Python 2 code, NUL bytes).
    A version of more than `max_bytes` bytes (0: no limit) is not parsed: no definitions
    (`too_large`), as the scan indexes no file larger (a generated table would take its `ast`
    a gigabyte)."""
    text = "\n".join(lines) + "\n"
    data = text.encode("utf-8", "surrogatepass")
    root = Module(len(lines), len(data))
    if max_bytes and root.size > max_bytes:
        return root, TOO_LARGE
    tree_root = _ts_parser().parse(data).root_node
    if not tree_root.has_error:
        try:
            root.children = _ts_children(tree_root, 0, root, strict=True)
        except _AskAst:
            pass
        else:
            return root, "tree-sitter"
    try:
        tree = _ast_parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        root.children = _ts_children(tree_root, 0, root)
        return root, "tree-sitter"
    root.children = _ast_defs(tree.body, 0, root)
    return root, "ast"


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a region holds: its definitions, and the first line of its first statement and
    the last line of its last one (None when it holds no statement)."""

    defs: list[Def]
    first: int | None
    last: int | None


def parse_region(lines: Sequence[str], lo: int, hi: int, container: Def) -> Parsed:
    """The definitions of new lines `lo..hi`, a sequence of whole statements at the body
    indentation of `container` (the module: at column 0), as its children.

    Tree-sitter parses the region first; what it parses clean and finds to be such a sequence
    is its answer.  Anything else is left to `ast` (which tells an indentation error from other
    syntax errors), and where `ast` cannot parse it (Python 2 code), to tree-sitter's tree
    with errors inside statements allowed.

    Raises:
        NoParse: the lines are not such a sequence.
    """
    chunk = lines[lo - 1 : hi]
    if not any(_is_code(line) for line in chunk):
        return Parsed([], None, None)
    wrapped = container.kind != MODULE
    text = ("if 1:\n" if wrapped else "") + "\n".join(chunk) + "\n"
    offset = lo - (2 if wrapped else 1)
    ts_root = _ts_parser().parse(text.encode("utf-8", "surrogatepass")).root_node
    if not ts_root.has_error:
        try:
            parsed = _ts_region(ts_root, offset, container, wrapped, strict=True)
        except _AskAst:
            pass
        else:
            return parsed
    try:
        tree = _ast_parse(text)
    except (ValueError, RecursionError, MemoryError) as exc:
        raise NoParse(str(exc)) from None
    except SyntaxError as exc:
        if isinstance(exc, IndentationError) and not isinstance(exc, TabError):
            raise NoParse(str(exc)) from None
        # Python 2 code (or a newer Python's): tree-sitter, when it parses it clean
        return _ts_region(ts_root, offset, container, wrapped)
    body: list[ast.stmt] = tree.body
    if wrapped:
        if len(body) != 1 or not isinstance(body[0], ast.If) or body[0].orelse:
            raise NoParse("not one block")
        body = body[0].body
        if body[0].col_offset != _expected_col(container, body[0].col_offset):
            raise NoParse("indentation differs from the body's")
    last = body[-1]
    return Parsed(
        _ast_defs(body, offset, container), _ast_start(body[0]) + offset, (last.end_lineno or last.lineno) + offset
    )


def _expected_col(container: Def, found: int) -> int:
    return container.body_col if container.body_col > container.col else found


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _ast_parse(text: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in analysed code
        return ast.parse(text)


_AST_DEF = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _ast_defs(body: list[ast.stmt], offset: int, parent: Def) -> list[Def]:
    """Definitions among `body` (statements of `parent`; compound statements transparent)."""
    found: list[Def] = []
    stack: list[ast.stmt] = list(reversed(body))
    while stack:
        node = stack.pop()
        if isinstance(node, _AST_DEF):
            found.append(_ast_def(node, offset, parent))
            continue
        for name in ("body", "orelse", "finalbody"):
            stack.extend(reversed(getattr(node, name, ())))
        for handler in reversed(getattr(node, "handlers", ())):
            stack.extend(reversed(handler.body))
        for case in reversed(getattr(node, "cases", ())):
            stack.extend(reversed(case.body))
    # pushed in reverse per statement list: restore source order
    found.sort(key=lambda d: d.start)
    return found


def _ast_def(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef, offset: int, parent: Def) -> Def:
    start = _ast_start(node)
    first = node.body[0]
    d = Def(
        node.name,
        _qualname(parent, node.name),
        _kind(isinstance(node, ast.ClassDef), parent),
        start + offset,
        node.lineno + offset,
        _ast_start(first) + offset,
        (node.end_lineno or node.lineno) + offset,
        node.col_offset,
        first.col_offset,
    )
    d.children = _ast_defs(node.body, offset, d)
    return d


def _ast_start(node: ast.stmt) -> int:
    """A statement's first line (a decorated definition's first decorator)."""
    decorators = getattr(node, "decorator_list", None)
    return min([node.lineno, *(d.lineno for d in decorators)]) if decorators else node.lineno


def _qualname(parent: Def, name: str) -> str:
    # interned: every version of a file holds the names of its definitions
    return sys.intern(name if parent.kind == MODULE else f"{parent.qualname}.{name}")


def _kind(is_class: bool, parent: Def) -> str:
    if is_class:
        return CLASS
    return METHOD if parent.kind == CLASS else FUNCTION


# tree-sitter: where ast cannot parse (Python 2 code); statement nodes only are walked

_TS_DEF_TYPES = frozenset({"function_definition", "class_definition"})
_TS_CONTAINERS = frozenset(
    {
        "module", "block", "if_statement", "elif_clause", "else_clause", "for_statement", "while_statement",
        "try_statement", "except_clause", "except_group_clause", "finally_clause", "with_statement",
        "match_statement", "case_clause", "ERROR",
    }
)  # fmt: skip


def _ts_parser() -> Any:
    return python_parser()  # the process's one tree-sitter parser, shared with cst_ingest


def _ts_region(root: Any, offset: int, container: Def, wrapped: bool, *, strict: bool = False) -> Parsed:
    """A region tree-sitter parsed (`root`) as whole statements: errors are allowed inside
    statements (Python 2 expressions tree-sitter does not know), not between them.  With
    `strict`, every block's statements must begin at one column (see `_ts_children`)."""
    block = root
    if wrapped:
        statements = [c for c in root.children if c.type != "comment"]
        if len(statements) != 1 or statements[0].type != "if_statement":
            raise NoParse("not one block")
        consequence = statements[0].child_by_field_name("consequence")
        if consequence is None or statements[0].child_by_field_name("alternative") is not None:
            raise NoParse("not one block")
        block = consequence
    if root.has_error and any(c.type == "ERROR" or c.is_missing for c in block.children):
        raise _Broken("tree-sitter found errors between statements")
    statements = [c for c in block.named_children if c.type != "comment"]
    if not statements:
        return Parsed([], None, None)
    col = statements[0].start_point[1]
    if wrapped and col != _expected_col(container, col):
        raise NoParse("indentation differs from the body's")
    if strict and not wrapped and col != 0:
        raise NoParse("unexpected indent")
    first = statements[0].start_point[0] + 1 + offset
    return Parsed(_ts_children(block, offset, container, strict), first, _ts_last_row(statements[-1]) + 1 + offset)


def _ts_children(node: Any, offset: int, parent: Def, strict: bool = False) -> list[Def]:
    """The definitions among the statements of `node` (compound statements transparent).

    With `strict`, a block that holds no statement, or whose statements do not all begin at
    one column, raises `NoParse`: tree-sitter takes a header without a body, an unexpected
    indent or a dedent to no enclosing level without an error, where Python stops with an
    `IndentationError`.
    """
    found: list[Def] = []
    if strict:
        _one_indent(node, empty=node.type == "module")
    stack = list(reversed(node.children))
    while stack:
        child = stack.pop()
        kind = child.type
        if kind == "decorated_definition":
            target = child.child_by_field_name("definition")
            if target is not None and target.type in _TS_DEF_TYPES:
                found.append(_ts_def(target, child, offset, parent, strict))
            continue
        if kind in _TS_DEF_TYPES:
            found.append(_ts_def(child, child, offset, parent, strict))
        elif kind in _TS_CONTAINERS:
            if strict and kind == "block":
                _one_indent(child, empty=False)
            stack.extend(reversed(child.children))
    return found


def _one_indent(block: Any, *, empty: bool) -> None:
    """Raise `NoParse` unless the statements of `block` that begin a line all begin at one
    column (comments aside: Python ignores their indentation), and unless it holds one
    (`empty`: it may hold none)."""
    col = -1
    row = -1
    for c in block.named_children:
        if c.type == "comment":
            continue
        r, k = c.start_point
        if r > row:
            if col < 0:
                col = k
            elif k != col:
                raise _AskAst("inconsistent indentation")
        row = c.end_point[0]
    if col < 0 and not empty:
        raise _AskAst("a block without a statement")


def _ts_def(node: Any, outer: Any, offset: int, parent: Def, strict: bool = False) -> Def:
    name_node = node.child_by_field_name("name")
    name = name_node.text.decode("utf-8", "replace") if name_node is not None else "<unnamed>"
    line = node.start_point[0] + 1 + offset
    block = node.child_by_field_name("body")
    if block is None and strict:
        raise _AskAst("a definition without a body")
    first = None
    if block is not None:
        first = next((c for c in block.children if c.type != "comment" and c.is_named), None)
    body, body_col = (first.start_point[0] + 1 + offset, first.start_point[1]) if first is not None else (line, 0)
    d = Def(
        name,
        _qualname(parent, name),
        _kind(node.type == "class_definition", parent),
        outer.start_point[0] + 1 + offset,
        line,
        body,
        max(_ts_last_row(node) + 1 + offset, line),
        node.start_point[1],
        body_col,
    )
    if block is not None:
        d.children = _ts_children(block, offset, d, strict)
    return d


def _ts_last_row(node: Any) -> int:
    """The row of the last token of `node` that is not a comment (as ast's `end_lineno`)."""
    while True:
        kids = [c for c in node.children if c.type != "comment"]
        if not kids:
            return int(node.end_point[0])
        node = kids[-1]


# ------------------------------------------------------------------------------------ update


@dataclass(slots=True)
class Region:
    """Old lines `old_lo..old_hi` became new lines `new_lo..new_hi`, parsed again: the
    definitions in them (subtrees included, preorder) are matched by `match_region`."""

    old_lo: int
    old_hi: int
    new_lo: int
    new_hi: int
    old_defs: list[Def]
    new_defs: list[Def]


@dataclass(slots=True)
class Update:
    """The new outline; the regions parsed again; the definitions updated inside (new, old:
    they hold hunks, their header did not change); `parser`: what parsed the whole new
    version when its regions could not be parsed alone (else None).

    Every other definition of the new outline is an old one (shared, or shifted): unchanged.
    """

    root: Module
    shift: Shift
    regions: list[Region] = field(default_factory=list)
    updated: list[tuple[Def, Def]] = field(default_factory=list)
    parser: str | None = None
    parsed_lines: int = 0
    widened: int = 0  # regions parsed again with their neighbours


class Shift:
    """Where unchanged old lines are in the new version, given sorted `-U0` hunks."""

    def __init__(self, hunks: Sequence[Hunk]) -> None:
        # a hunk is before old line l when its last old line (or, inserting, the line it
        # inserts after) is before l
        self.keys = [h.old_start + h.old_count - 1 if h.old_count else h.old_start for h in hunks]
        self.deltas = [0]
        for h in hunks:
            self.deltas.append(self.deltas[-1] + h.new_count - h.old_count)

    def __call__(self, line: int) -> int:
        return line + self.deltas[bisect_left(self.keys, line)]


_STRUCTURAL = (b"def ", b"def\t", b"class ", b"class\t", b"async ", b"async\t", b"@")
_TRIPLE = (b'"' * 3, b"'" * 3)


def _structural(raw: bytes) -> bool:
    return raw.lstrip().startswith(_STRUCTURAL) or _TRIPLE[0] in raw or _TRIPLE[1] in raw


def _maybe_structural(lines: Sequence[bytes]) -> bool:
    """Whether some line of `lines` may be `_structural` (False: none is; one search of the
    lines joined instead of one test per line)."""
    if not lines:
        return False
    text = b"\n".join(lines)
    return b"def" in text or b"class" in text or b"@" in text or b"async" in text or _TRIPLE[0] in text or _TRIPLE[1] in text


class _Change:
    """A hunk as the update sees it: the old lines it changes, `a..b` (inserting after line p:
    a = p + 1, b = p), and what its text may do to the definitions around it."""

    __slots__ = (
        "a",
        "b",
        "first_line",
        "hunk",
        "indent",
        "last_code",
        "last_line",
        "least_indent",
        "removed_indent",
        "structural",
    )

    def __init__(self, hunk: Hunk) -> None:
        self.hunk = hunk
        self.a = hunk.old_start if hunk.old_count else hunk.old_start + 1
        self.b = self.a + hunk.old_count - 1
        self.structural = _maybe_structural(hunk.removed) and any(_structural(raw) for raw in hunk.removed)
        check_added = _maybe_structural(hunk.added)
        self.removed_indent: int | None = None  # of its first removed line of code
        for raw in hunk.removed:
            text = raw.lstrip()
            if text and not text.startswith(b"#"):
                self.removed_indent = len(raw) - len(text)
                break
        self.indent: int | None = None  # of its first added line of code
        self.least_indent: int | None = None  # of its least indented added line of code
        self.last_code = b""  # its last added line of code, stripped
        self.last_line = 0  # the new line of that line
        self.first_line = 0  # the new line of its first added line of code
        for i, raw in enumerate(hunk.added):
            text = raw.lstrip()
            if not text or text.startswith(b"#"):
                continue
            self.structural = self.structural or (check_added and _structural(raw))
            width = len(raw) - len(text)
            if self.indent is None:
                self.indent = self.least_indent = width
                self.first_line = hunk.new_start + i
            elif self.least_indent is not None and width < self.least_indent:
                self.least_indent = width
            self.last_code, self.last_line = text, hunk.new_start + i

    def extends(self, col: int) -> bool:
        """Whether, after a definition at column `col` (not right after it), it may continue
        that definition's body: its added code begins indented deeper (what follows may be
        shallower: the body's end, then its parent's statements), and does not replace code at
        the depth it starts at (a line of what follows the definition, such as an argument of a
        call spread over lines, stays a line of it)."""
        return self.indent is not None and self.indent > col and self.removed_indent != self.indent

    def shallower(self, col: int) -> bool:
        """Whether some code it removes or adds is indented less than `col`."""
        if self.least_indent is not None and self.least_indent < col:
            return True
        for raw in self.hunk.removed:
            text = raw.lstrip()
            if text and not text.startswith(b"#") and len(raw) - len(text) < col:
                return True
        return False

    def at_depth(self, indent: int) -> bool:
        """Whether the code it adds (if any) is all at `indent`, no deeper and no shallower."""
        return self.indent is None or (self.indent == indent and self.least_indent == indent)

    def decorates(self) -> bool:
        """Whether it ends with a decorator (of the definition right after it)."""
        return self.last_code.startswith(b"@")

    def keeps_header(self, at_start: bool) -> bool:
        """Whether, within a definition's header, it keeps its decorators, kind and name (a
        signature or a decorator's arguments edited): its lines move, nothing else.  At the
        header's first line (`at_start`), its added code must begin with the header (code
        before it would belong to what precedes the definition)."""
        if any(_TRIPLE[0] in raw or _TRIPLE[1] in raw for raw in (*self.hunk.removed, *self.hunk.added)):
            return False
        if at_start and self.indent is not None:
            first = next(raw for raw in self.hunk.added if raw.strip() and not raw.lstrip().startswith(b"#"))
            if not _HEADER.match(first):
                return False
        return _header_signature(self.hunk.removed) == _header_signature(self.hunk.added)

    def header_line(self, kinds: tuple[bytes, ...]) -> int | None:
        """The new line of its first added line that starts a header part of `kinds`
        (b"@": a decorator, b"def": a def or class line)."""
        for i, raw in enumerate(self.hunk.added):
            found = _HEADER.match(raw)
            if found and (b"@" if found.group(1) is None else b"def") in kinds:
                return self.hunk.new_start + i
        return None


_DEF_START = re.compile(r"[ \t]*(?:(?:async[ \t]+)?def[ \t(]|class[ \t(:]|@)")
_HEADER = re.compile(rb"[ \t]*(?:(async[ \t]+def|def|class)[ \t]+(\w+)|@)")


def _header_signature(lines: Sequence[bytes]) -> list[tuple[bytes, bytes] | bytes]:
    out: list[tuple[bytes, bytes] | bytes] = []
    for raw in lines:
        found = _HEADER.match(raw)
        if found:
            out.append(b"@" if found.group(1) is None else (found.group(1), found.group(2)))
    return out


def update_outline(
    old: Module,
    hunks: Sequence[Hunk],
    new_lines: Callable[[], Sequence[str]],
    n_old: int,
    n_new: int,
    max_bytes: int = 0,
) -> Update:
    """The outline of the new version: `old` updated through `hunks` (sorted, `-U0`).

    `new_lines` gives the new version's lines (called only when a region must be parsed).
    With `max_bytes` (see `parse_outline`), a version that grows past it loses its definitions
    (one region: the whole file), and one that shrinks back under it is parsed whole.
    """
    size = old.size + sum(len(b) + 1 for h in hunks for b in h.added) - sum(len(b) + 1 for h in hunks for b in h.removed)
    if max_bytes and (size > max_bytes or old.size > max_bytes):
        return _whole(old, hunks, new_lines, n_old, n_new, max_bytes, size)
    root = Module(n_new, size)
    shift = Shift(hunks)
    update = Update(root, shift)
    state = _UpdateState(shift, new_lines, update)
    try:
        body = state.children(old, root, [_Change(h) for h in hunks], (1, max(n_old, 1)), (1, max(n_new, 1)))
    except NoParse:
        lines = new_lines()
        fresh, parser = parse_outline(lines, max_bytes)
        region = Region(1, max(n_old, 1), 1, max(n_new, 1), list(walk(old)), list(walk(fresh)))
        return Update(fresh, shift, [region], [], parser, len(lines))
    root.children = body.defs
    return update


def _whole(
    old: Module, hunks: Sequence[Hunk], new_lines: Callable[[], Sequence[str]], n_old: int, n_new: int,
    max_bytes: int, size: int,
) -> Update:
    """`update_outline` across the size limit (or beyond it): the new version as one region."""
    if size > max_bytes:  # not parsed (nor its lines made)
        fresh, parser, parsed = Module(n_new, size), TOO_LARGE, 0
    else:
        lines = new_lines()
        fresh, parser = parse_outline(lines, max_bytes)
        parsed = len(lines)
    region = Region(1, max(n_old, 1), 1, max(n_new, 1), list(walk(old)), list(walk(fresh)))
    return Update(fresh, Shift(hunks), [region], [], parser, parsed)


# what a child of a container is to the changes in it
_KEPT, _INSIDE, _TAIL, _MEMBER = 0, 1, 2, 3


class _UpdateState:
    def __init__(self, shift: Shift, new_lines: Callable[[], Sequence[str]], update: Update) -> None:
        self.shift = shift
        self.new_lines = new_lines
        self.update = update

    def children(
        self,
        old: Def,
        new: Def,
        changes: list[_Change],
        span: tuple[int, int],
        n_span: tuple[int, int],
        *,
        open_end: bool = False,
    ) -> Parsed:
        """`old`'s children updated through `changes`, all in its body: old lines `span`, new
        lines `n_span`.  With `open_end`, its last line may move (the changes reach it, and
        `span` ends at the last line it may extend to).  Also returns its new first statement
        line when that may have moved, and its new last line when `open_end`.

        Raises:
            NoParse: where a region does not parse as statements of `old`'s body.
        """  # fmt: skip
        lo, hi = span
        kids = old.children
        n = len(kids)
        status = [_KEPT] * n
        own: list[list[_Change]] = [[] for _ in range(n)]  # per child: its changes (inside, tail)
        heads: list[list[_Change]] = [[] for _ in range(n)]  # per child: changes of its header in place
        gaps: list[list[_Change]] = [[] for _ in range(n + 1)]  # gap g: between child g - 1 and g
        starts = [c.start for c in kids]
        ends = [c.end for c in kids]
        for ch in changes:
            i = bisect_right(starts, ch.a) - 1  # the last child starting at or before a
            j0 = bisect_left(ends, ch.a)  # the first child ending at or after a
            j1 = bisect_right(starts, ch.b) - 1  # the last child starting at or before b
            if i >= 0 and kids[i].body <= ch.a <= kids[i].end:
                if ch.b < kids[i].end:
                    status[i] = max(status[i], _INSIDE)
                elif j1 > i:  # over its end into the next ones
                    status[i : j1 + 1] = [_MEMBER] * (j1 + 1 - i)
                else:
                    status[i] = max(status[i], _TAIL)
                own[i].append(ch)
            elif (
                i >= 0
                and kids[i].start <= ch.b < kids[i].body
                and ch.keeps_header(ch.a == kids[i].start)
                and not self._past_header(ch)
            ):
                status[i] = max(status[i], _INSIDE)  # a header edited in place
                heads[i].append(ch)
            elif j0 <= j1:  # over a header
                status[j0 : j1 + 1] = [_MEMBER] * (j1 + 1 - j0)
                gaps[j0].append(ch)
            elif j0 < n and ch.decorates() and ch.b + 1 == kids[j0].start:
                status[j0] = _MEMBER
                gaps[j0].append(ch)
            elif j0 > 0 and ch.extends(kids[j0 - 1].col):  # maybe more of the child before it
                status[j0 - 1] = max(status[j0 - 1], _TAIL)
                own[j0 - 1].append(ch)
            else:
                gaps[j0].append(ch)
        indent = 0 if old.kind == MODULE else old.body_col
        for ch in changes:  # a compound statement's header changed before the children nested in it
            g = bisect_right(starts, ch.b)  # the first child after it (not one it is inside the body of)
            inside = g > 0 and kids[g - 1].body <= ch.a and ch.b <= ends[g - 1]
            if g < n and kids[g].col > indent and not inside and ch.shallower(kids[g].col):
                for k in range(g, n):
                    if kids[k].col <= indent:
                        break
                    status[k] = _MEMBER
                    gaps[k].extend(own[k])
                    own[k] = []
        for k in range(n):
            if status[k] == _MEMBER and heads[k]:
                gaps[k].extend(heads[k])
        # a child whose end may move takes the changes after it, and joins a region next to it
        for k in range(n - 1, -1, -1):
            if status[k] == _TAIL:
                own[k].extend(gaps[k + 1])
                gaps[k + 1] = []
                if k + 1 < n and status[k + 1] == _MEMBER:
                    status[k] = _MEMBER
        updated: dict[int, Def] = {}
        for k in range(n):
            if status[k] in (_INSIDE, _TAIL):
                tail = status[k] == _TAIL
                limit = (kids[k + 1].start - 1, self.shift(kids[k + 1].start) - 1) if k + 1 < n else (hi, n_span[1])
                mark = len(self.update.regions), len(self.update.updated)
                try:
                    updated[k] = self._updated(kids[k], own[k], limit if tail else None, heads[k])
                except NoParse:  # what changed in it does not parse alone: parsed whole, with its neighbours
                    del self.update.regions[mark[0] :], self.update.updated[mark[1] :]
                    status[k] = _MEMBER
                    gaps[k].extend(own[k] + heads[k])
        active = [bool(gaps[g]) and not _quiet(gaps[g], indent) for g in range(n + 1)]
        quiet_end: int | None = None
        if open_end and gaps[n] and not active[n]:
            quiet_end = _quiet_end(gaps[n], old.end)
            active[n] = quiet_end is None
        first_moved = old.kind != MODULE and any(ch.a <= lo for ch in changes)
        if first_moved:
            active[0] = True
        return self._assemble(
            old, new, kids, status, active, updated, own, gaps, span, n_span, first_moved, open_end, quiet_end
        )

    def _assemble(
        self,
        old: Def,
        new: Def,
        kids: list[Def],
        status: list[int],
        active: list[bool],
        updated: dict[int, Def],
        own: list[list[_Change]],
        gaps: list[list[_Change]],
        span: tuple[int, int],
        n_span: tuple[int, int],
        first_moved: bool,
        open_end: bool,
        quiet_end: int | None,
    ) -> Parsed:
        """The new children: kept ones as they were (shifted), updated ones, and the regions
        parsed again: runs of active gaps and member children.  A run that does not parse
        alone (it cuts a compound statement) is widened over the children kept beside it."""  # fmt: skip
        n = len(kids)
        news: dict[int, Def] = {}

        def child(k: int) -> Def:
            if k not in news:
                news[k] = updated.get(k) or kids[k].shifted(self.shift(kids[k].start) - kids[k].start)
            return news[k]

        runs: list[list[int]] = []  # [g, g_end]: gaps g..g_end, member children g..g_end - 1
        g = 0
        while g <= n:
            if active[g] or (g < n and status[g] == _MEMBER):
                g_end = g
                while g_end < n and status[g_end] == _MEMBER:
                    g_end += 1
                runs.append([g, g_end])
                g = g_end + 1
            else:
                g += 1
        parsed_runs: dict[int, tuple[int, Parsed, Region | None]] = {}
        tries: dict[int, int] = {}
        i = 0
        while i < len(runs):
            g, g_end = runs[i]
            n_lo = child(g - 1).end + 1 if g > 0 else n_span[0]
            n_hi = self.shift(kids[g_end].start) - 1 if g_end < n else n_span[1]
            r_lo = kids[g - 1].end + 1 if g > 0 else span[0]
            r_hi = kids[g_end].start - 1 if g_end < n else span[1]
            parsed = None
            region = None
            if g == g_end:  # no definition in it: maybe no parse needed
                changes = [ch for k in range(g, g_end + 1) for ch in gaps[k]]
                parsed = self._plain(old, changes, n_lo, n_hi, first_moved and g == 0, open_end and g == n)
            try:
                if parsed is None:
                    parsed = self._reparse(old, new, kids[g:g_end], r_lo, r_hi, n_lo, n_hi)
                    region = self.update.regions[-1]
            except NoParse as exc:
                if open_end and g_end == n:
                    raise  # the end of an open body: what follows it is not its own
                if old.kind == MODULE and isinstance(exc, _Broken) and _starts_top_level(kids, g):
                    raise  # no wider run parses: the version is parsed whole (`update_outline`)
                step = 1 << tries.get(i, 0)  # wider and wider: a few parses, not one per child
                tries[i] = tries.get(i, 0) + 1
                lower = g
                while lower > 0 and g - lower < step and lower - 1 not in updated:
                    lower -= 1
                upper = g_end
                while upper < n and upper - g_end < step and upper not in updated:
                    upper += 1
                if (lower, upper) == (g, g_end):
                    raise
                g, g_end = lower, upper
                while i > 0 and runs[i - 1][1] >= g:  # it reaches the run before: one run
                    before = runs.pop(i - 1)[0]
                    g = min(g, before)
                    _, _, dropped = parsed_runs.pop(before, (0, None, None))
                    if dropped is not None:  # parsed again within this run
                        self.update.regions.remove(dropped)
                    i -= 1
                while i + 1 < len(runs) and runs[i + 1][0] <= g_end:
                    g_end = max(g_end, runs.pop(i + 1)[1])
                runs[i] = [g, g_end]
                self.update.widened += 1
                continue
            parsed_runs[g] = (g_end, parsed, region)
            i += 1
        out: list[Def] = []
        first: int | None = None
        last: int | None = None
        g = 0
        while g <= n:
            if g in parsed_runs:
                g_end, parsed, _ = parsed_runs[g]
                out.extend(parsed.defs)
                if first_moved and first is None:
                    first = parsed.first
                if parsed.last is not None:
                    last = parsed.last
                g = g_end
                if g == n:
                    break
            if g < n:
                kid = child(g)
                out.append(kid)
                last = kid.end
                if first_moved and first is None:
                    first = kid.start
            g += 1
        if first_moved and first is None:
            raise NoParse("no statement left in the body")
        if open_end:
            if quiet_end is not None:
                last = quiet_end
            if last is None:
                raise NoParse("no statement left in the body")
        return Parsed(out, first, last)

    def _updated(
        self, old: Def, changes: list[_Change], limit: tuple[int, int] | None, heads: Sequence[_Change] = ()
    ) -> Def:
        """A child with changes in its body (and, with `limit`, at its end, which may move up
        to `limit`: old and new line) or in its header, edited in place (`heads`): its body
        updated."""
        shift = self.shift
        start, line = shift(old.start), shift(old.line)
        for ch in heads:
            if ch.a == old.start:
                start = ch.header_line((b"@", b"def")) or start
            if ch.a <= old.line <= ch.b:
                line = ch.header_line((b"def",)) or line
        n_lo = shift(old.body - 1) + 1  # right after its header
        for ch in heads:
            if ch.b == old.body - 1:  # its last line edited
                n_lo = ch.hunk.new_start + ch.hunk.new_count
        span = (old.body, limit[0] if limit else old.end)
        n_span = (n_lo, limit[1] if limit else shift(old.end))
        new = Def(
            old.name, old.qualname, old.kind, start, line, shift(old.body), n_span[1], old.col, old.body_col, None,
            old.lineage,
        )  # fmt: skip
        body = self.children(old, new, sorted(changes, key=lambda c: c.a), span, n_span, open_end=limit is not None)
        new.children = body.defs
        if body.first is not None:
            new.body = body.first
        if limit is not None:
            assert body.last is not None
            new.end = body.last
        self.update.updated.append((new, old))
        return new

    def _past_header(self, ch: _Change) -> bool:
        """Whether code a change between a definition's first line and its first statement adds
        comes after a line of code ending with a colon (the header's last; comments and blank
        lines between): statements of the body then, not the header.  (A colon ending a line
        inside the header's brackets makes it answer yes: the definition is parsed again.)"""
        if ch.indent is None:
            return False
        lines = self.new_lines()
        at = ch.hunk.new_start - 1  # the last new line of code before its added lines
        while at >= 1 and not lines[at - 1].split("#", 1)[0].strip():
            at -= 1
        colon = at >= 1 and lines[at - 1].split("#", 1)[0].rstrip().endswith(":")
        for raw in ch.hunk.added:
            text = raw.split(b"#", 1)[0].strip()
            if text:
                if colon:
                    return True
                colon = text.endswith(b":")
        return False

    def _plain(
        self, old: Def, changes: Sequence[_Change], n_lo: int, n_hi: int, need_first: bool, need_last: bool
    ) -> Parsed | None:
        """A region that held no definition and needs no parse: no line of it could start one,
        no added code is shallower than the body, and where its statements begin (when
        `need_first`: its first change adds the first statement) and end (`need_last`: its last
        change adds the body's last line, right at the old one) is told by the changes.
        Else None."""
        indent = 0 if old.kind == MODULE else old.body_col
        if any(ch.least_indent is not None and ch.least_indent < indent for ch in changes):
            return None
        lines = self.new_lines()
        if n_hi >= n_lo and any(map(_DEF_START.match, lines[n_lo - 1 : n_hi])):
            return None
        first = last = None
        if need_first:
            ch = min(changes, key=lambda c: c.a, default=None)
            if ch is None or ch.indent != indent:
                return None
            first = ch.first_line
        if need_last:
            ch = max(changes, key=lambda c: c.a, default=None)
            if ch is None or not ch.last_line or ch.a > old.end + 1:
                return None
            last = ch.last_line
        return Parsed([], first, last)

    def _reparse(self, old: Def, new: Def, members: list[Def], r_lo: int, r_hi: int, n_lo: int, n_hi: int) -> Parsed:
        parsed = parse_region(self.new_lines(), n_lo, n_hi, new) if n_hi >= n_lo else Parsed([], None, None)
        self.update.parsed_lines += max(n_hi - n_lo + 1, 0)
        old_defs = [d for m in members for d in (m, *walk(m))]
        new_defs = [d for m in parsed.defs for d in (m, *walk(m))]
        self.update.regions.append(Region(r_lo, r_hi, n_lo, n_hi, old_defs, new_defs))
        return parsed


def _starts_top_level(kids: Sequence[Def], g: int) -> bool:
    """Whether the module's run from gap `g` begins a top-level statement: at the file's start or
    after a definition at column 0.  (A definition nested in an `if` or `try` at module level is
    a child of the module too: a run after it may begin with the `else:` or `except:` of its
    block, a syntax error until it is widened over the `if`: such a run is widened.)"""
    return g == 0 or kids[g - 1].col == 0


def _quiet(changes: Sequence[_Change], indent: int) -> bool:
    """Whether `changes`, touching no definition, leave the definitions around them as they
    were: no def/class/decorator line, no triple quote, added code no shallower than the body."""
    return not any(ch.structural or (ch.least_indent is not None and ch.least_indent < indent) for ch in changes)


def _quiet_end(changes: Sequence[_Change], end: int) -> int | None:
    """The new last line of a body whose quiet `changes` reach its old last line `end`, when
    the last of them adds code right there (else None: a region must tell)."""
    last = max(changes, key=lambda c: c.a)
    if last.last_line and last.a <= end + 1:
        return last.last_line
    return None


# ------------------------------------------------------------------------------------ matching


def match_region(region: Region, hunks: Sequence[Hunk], shift: Shift) -> list[tuple[Def, Def]]:
    """Pairs (old, new) of the region's definitions that are the same definition.

    An old definition becomes the new one that holds most of its own unchanged lines (lines
    of its span outside its nested definitions), one to one, most shared lines first; then
    an unmatched old and new of the same qualified name pair up (a body rewritten whole);
    then an unmatched old class or function becomes the new parent of most of its children
    (a renamed class whose header and members alone changed).
    """
    olds, news = region.old_defs, region.new_defs
    if not olds or not news:
        return []
    old_owner = _owners(olds, region.old_lo, region.old_hi)
    new_owner = _owners(news, region.new_lo, region.new_hi)
    votes: dict[tuple[int, int], int] = {}
    for line in _unchanged(region.old_lo, region.old_hi, hunks):
        o = old_owner[line - region.old_lo]
        if o < 0:
            continue
        n_line = shift(line) - region.new_lo
        if 0 <= n_line < len(new_owner) and (n := new_owner[n_line]) >= 0:
            votes[(o, n)] = votes.get((o, n), 0) + 1
    ranked = sorted(votes.items(), key=lambda kv: (-kv[1], olds[kv[0][0]].qualname != news[kv[0][1]].qualname, kv[0]))
    old_to_new: dict[int, int] = {}
    taken: set[int] = set()
    for (o, n), _ in ranked:
        if o not in old_to_new and n not in taken:
            old_to_new[o] = n
            taken.add(n)
    free_new: dict[tuple[str, bool], list[int]] = {}
    for n, d in enumerate(news):
        if n not in taken:
            free_new.setdefault((d.qualname, d.kind == CLASS), []).append(n)
    for o, d in enumerate(olds):
        if o not in old_to_new and (same := free_new.get((d.qualname, d.kind == CLASS))):
            n = same.pop(0)
            old_to_new[o] = n
            taken.add(n)
    _match_by_children(olds, news, old_to_new, taken)
    old_index = {id(d): i for i, d in enumerate(olds)}
    new_index = {id(d): i for i, d in enumerate(news)}
    for o, n in list(old_to_new.items()):
        for oc, nc in match_children(olds[o], news[n]):
            oi, ni = old_index.get(id(oc)), new_index.get(id(nc))
            if oi is not None and ni is not None and oi not in old_to_new and ni not in taken:
                old_to_new[oi] = ni
                taken.add(ni)
    return [(olds[o], news[n]) for o, n in sorted(old_to_new.items())]


def match_children(old: Def, new: Def) -> list[tuple[Def, Def]]:
    """The nested definitions of two matched definitions that match each other: by name and
    same-name rank, level by level (what moves with a definition moves with it)."""
    pairs: list[tuple[Def, Def]] = []
    stack = [(old, new)]
    while stack:
        o, n = stack.pop()
        theirs: dict[tuple[str, str], list[Def]] = {}
        for c in n.children:
            theirs.setdefault((c.name, c.kind), []).append(c)
        for c in o.children:
            same = theirs.get((c.name, c.kind))
            if same:
                match = same.pop(0)
                pairs.append((c, match))
                stack.append((c, match))
    return pairs


def _match_by_children(olds: list[Def], news: list[Def], old_to_new: dict[int, int], taken: set[int]) -> None:
    parent_of: dict[int, int] = {}
    for i, d in enumerate(news):
        for c in d.children:
            parent_of[id(c)] = i
    old_index = {id(d): i for i, d in enumerate(olds)}
    for o, d in enumerate(olds):
        if o in old_to_new or not d.children:
            continue
        counts: dict[int, int] = {}
        for c in d.children:
            n = old_to_new.get(old_index.get(id(c), -1))
            if n is not None and (p := parent_of.get(id(news[n]))) is not None and p not in taken:
                counts[p] = counts.get(p, 0) + 1
        if counts:
            best = min(counts, key=lambda p: (-counts[p], p))
            if news[best].kind == CLASS or d.kind != CLASS:
                old_to_new[o] = best
                taken.add(best)


def _owners(defs: list[Def], lo: int, hi: int) -> list[int]:
    """Per line lo..hi, the index in `defs` (preorder) of the innermost definition holding it, or -1."""
    owner = [-1] * max(hi - lo + 1, 0)
    for i, d in enumerate(defs):
        a, b = max(d.start, lo), min(d.end, hi)
        if a <= b:
            owner[a - lo : b - lo + 1] = [i] * (b - a + 1)
    return owner


def _unchanged(lo: int, hi: int, hunks: Sequence[Hunk]) -> Iterator[int]:
    """Old lines lo..hi that no hunk removed."""
    line = lo
    for h in hunks:
        if not h.old_count:
            continue
        first, last = h.old_start, h.old_start + h.old_count - 1
        if last < line:
            continue
        if first > hi:
            break
        yield from range(line, min(first, hi + 1))
        line = last + 1
    if line <= hi:
        yield from range(line, hi + 1)


def count_in(start: int, end: int, starts: Sequence[int], counts: Sequence[int]) -> int:
    """How many of the ranges `starts[i]..+counts[i]` (sorted, disjoint) fall in start..end."""
    total = 0
    i = bisect_right(starts, end)
    while i > 0:
        i -= 1
        a, n = starts[i], counts[i]
        if n == 0:
            continue
        b = a + n - 1
        if b < start:
            break
        total += min(b, end) - max(a, start) + 1
    return total
