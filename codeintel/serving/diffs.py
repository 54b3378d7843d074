"""Unified diffs (`git diff`, `diff -u`) to the lines they change, on either side.

A diff names lines twice: in the file before (the "old" side) and after (the "new" side).  Which
numbering matches a snapshot depends on whether the snapshot contains the change, so each file
keeps both: the lines removed (old numbering) and added (new numbering), and the places where
lines were only inserted or only deleted, as the pair of lines around them on the other side.
`changed_lines` gives one side's view: single lines and gaps (a gap is inside whatever
definition contains both of its lines).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_INDEX = re.compile(r"^index ([0-9a-f]+)\.\.([0-9a-f]+)")


@dataclass
class FileDiff:
    """What a diff changes in one file."""

    old_path: str | None  # None: the diff adds the file
    new_path: str | None  # None: the diff deletes the file
    old_blob: str | None = None  # (abbreviated) git blob ids from the `index` line
    new_blob: str | None = None
    removed: list[int] = field(default_factory=list)  # old line numbers
    added: list[int] = field(default_factory=list)  # new line numbers
    inserted_at: list[tuple[int, int]] = field(default_factory=list)  # old lines around a pure insertion
    deleted_at: list[tuple[int, int]] = field(default_factory=list)  # new lines around a pure deletion
    binary: bool = False

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or "?"

    def changed_lines(self, side: str) -> tuple[list[int], list[tuple[int, int]]]:
        """(lines, gaps) of the change in `side`'s numbering ("old" or "new")."""
        if side == "old":
            return sorted(set(self.removed)), sorted(set(self.inserted_at))
        return sorted(set(self.added)), sorted(set(self.deleted_at))


def parse_unified_diff(text: str) -> list[FileDiff]:
    """The files a unified diff changes, in the order it names them.

    Understands `git diff` output (renames, new and deleted files, binary files, `\\ No newline`)
    and plain `diff -u` output (`---`/`+++` headers only).  Paths lose git's `a/` and `b/`.
    """
    files: list[FileDiff] = []
    current: FileDiff | None = None
    has_header = False  # the current file had its `---` line
    old_no = new_no = old_left = new_left = 0
    run: list[str] = []  # the kinds ("-", "+") of the run of changed lines being read
    run_old = run_new = 0  # where that run started

    def close_run() -> None:
        if current is not None and run:
            if "-" not in run:  # only insertions: between old lines run_old - 1 and run_old
                current.inserted_at.append((max(1, run_old - 1), run_old))
            if "+" not in run:  # only deletions: between new lines run_new - 1 and run_new
                current.deleted_at.append((max(1, run_new - 1), run_new))
        run.clear()

    # git ends a line at "\n" only: a form feed, "\x85" or U+2028 in a line (which
    # `str.splitlines` would split at) is part of it; a diff saved with CRLF endings loses the CRs
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for line in lines:
        line = line.removesuffix("\r")
        if current is not None and (old_left > 0 or new_left > 0):
            kind = line[:1] or " "  # an empty line is an empty context line
            if kind == "\\":
                continue
            if kind == " ":
                close_run()
                old_no, new_no, old_left, new_left = old_no + 1, new_no + 1, old_left - 1, new_left - 1
                continue
            if kind in "-+":
                if not run:
                    run_old, run_new = old_no, new_no
                run.append(kind)
                if kind == "-":
                    current.removed.append(old_no)
                    old_no, old_left = old_no + 1, old_left - 1
                else:
                    current.added.append(new_no)
                    new_no, new_left = new_no + 1, new_left - 1
                continue
            old_left = new_left = 0  # a malformed hunk: read on as headers
        close_run()
        if line.startswith("diff --git "):
            current = FileDiff(*_git_paths(line[len("diff --git ") :]))
            files.append(current)
            has_header = False
        elif hunk := _HUNK.match(line):
            if current is None:
                current = FileDiff(None, None)
                files.append(current)
            old_no, new_no = int(hunk[1]), int(hunk[3])
            old_left = 1 if hunk[2] is None else int(hunk[2])
            new_left = 1 if hunk[4] is None else int(hunk[4])
            old_no += old_left == 0  # "-12,0": the insertion comes after old line 12
            new_no += new_left == 0
        elif line.startswith("--- "):
            if current is None or has_header or current.removed or current.added:
                current = FileDiff(None, None)
                files.append(current)
            current.old_path, has_header = _header_path(line[4:]), True
        elif current is None:
            continue
        elif line.startswith("+++ "):
            current.new_path = _header_path(line[4:])
        elif found := _INDEX.match(line):
            current.old_blob, current.new_blob = found[1], found[2]
        elif line.startswith("new file mode"):
            current.old_path = None
        elif line.startswith("deleted file mode"):
            current.new_path = None
        elif line.startswith("rename from "):
            current.old_path = _unquote(line[len("rename from ") :])
        elif line.startswith("rename to "):
            current.new_path = _unquote(line[len("rename to ") :])
        elif line.startswith("Binary files "):
            current.binary = True
    close_run()
    for f in files:
        if f.old_blob and set(f.old_blob) == {"0"}:
            f.old_path = None
        if f.new_blob and set(f.new_blob) == {"0"}:
            f.new_path = None
    return [f for f in files if f.old_path or f.new_path]


def _git_paths(rest: str) -> tuple[str | None, str | None]:
    """`a/x b/y` (possibly quoted) from a `diff --git` line."""
    if rest.startswith('"'):
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', rest)
        names = [_unquote(f'"{q}"') if q else p for q, p in parts]
    else:
        half = len(rest) // 2  # `a/<p> b/<p>`: the usual case has the same path twice
        names = [rest[:half], rest[half + 1 :]] if rest[half : half + 1] == " " else rest.split(" ", 1)
    if len(names) != 2:
        return None, None
    return _strip_prefix(names[0], "a/"), _strip_prefix(names[1], "b/")


def _header_path(text: str) -> str | None:
    name = text.split("\t", 1)[0].rstrip()
    if name == "/dev/null":
        return None
    name = _unquote(name)
    for prefix in ("a/", "b/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _strip_prefix(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


def _unquote(name: str) -> str:
    """git's C-style quoting of unusual paths (`"caf\\303\\251.py"`)."""
    if not (len(name) >= 2 and name[0] == name[-1] == '"'):
        return name
    raw = name[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")
    return raw.decode("utf-8", "surrogateescape")
