"""The history's one `git log -p` stream: its arguments, and a parser into commit records.

One stream carries every commit reachable from the requested tips (parents before children,
`--topo-order --reverse`; `--full-history --sparse` so that commits touching no `.py` file are
listed too), each non-merge commit's `.py` changes against its parent with zero lines of
context (`-U0`; renames detected, `-M`), full blob ids (`--raw --no-abbrev`), and for a merge the
files whose merged version differs from every parent (`-c --combined-all-paths --raw`; their
combined patches are skipped: the walk compares the versions itself).  Author and committer
names go through `.mailmap` (`%aN`, `%aE`).
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Protocol

# a commit's header line: NUL, "C", then the fields separated by US (0x1f)
COMMIT_MARK = b"\x00C\x1f"
_FORMAT = "%x00C%x1f%H%x1f%P%x1f%aN%x1f%aE%x1f%at%x1f%cN%x1f%cE%x1f%ct%x1f%s"
NULL_BLOB = "0" * 40
PY_PATHSPEC = "*.py"
# at most 32 MB of pack files mapped at once, in 4 MB windows (git maps up to 8 GiB in 1 GiB ones):
# each git process of the walk then holds tens of MB of a pack it reads all of, not the whole pack
# (the log and the blob reader each map it; a cold walk in halves runs two of each)
PACK_WINDOWS = ("-c", "core.packedGitLimit=32m", "-c", "core.packedGitWindowSize=4m")


# what a user's config must not change in the walk's logs: hunks fused with the context between
# them (not -U0's removed-then-added lines), renames past another limit, hunks placed otherwise,
# one file followed through its renames (`log.follow` takes `*.py` for one), no diff of a root
# commit, signature checks written among the commits
LOG_PINS = (
    "-c", "diff.interHunkContext=0", "-c", "diff.renameLimit=1000", "-c", "diff.indentHeuristic=true",
    "-c", "log.follow=false", "-c", "log.showRoot=true", "-c", "log.showSignature=false",
)  # fmt: skip


def log_args(*, from_stdin: bool = True) -> list[str]:
    """`git` arguments of the history stream (revisions on stdin: `HEAD` and `^boundary` lines)."""
    return [
        "-c", "core.quotepath=off", "-c", "diff.noprefix=false",
        "-c", "diff.mnemonicPrefix=false", "-c", "diff.relative=false", "-c", "i18n.logOutputEncoding=UTF-8",
        *LOG_PINS,
        # half of git's default (96 MB): on sqlalchemy the log alone takes 11.4-12.3 s and 106 MB
        # (96m: 10.6-11.0 s, 162 MB; 32m: 15.0-15.8 s, 85 MB); the walk reading it waits less at
        # 48m than at 32m, and the export's processes stay under 1 GB together
        "-c", "core.deltaBaseCacheLimit=48m",
        *PACK_WINDOWS,
        "log", "--topo-order", "--reverse", "--full-history", "--sparse", "--no-color", "--no-ext-diff",
        "--no-textconv", "--no-notes", "--encoding=UTF-8", "--text", "-p", "-U0", "-M", "--diff-algorithm=myers",
        "--full-index", "--no-abbrev", "--raw", "-c", "--combined-all-paths", f"--format={_FORMAT}",
        *(["--stdin"] if from_stdin else ["HEAD"]), "--", PY_PATHSPEC,
    ]  # fmt: skip


# a merge's line in the merges' stream (`merge_args`): NUL, "M", US, its id
MERGE_MARK = b"\x00M\x1f"


def merge_args(*, from_stdin: bool = True) -> list[str]:
    """`git` arguments of the merges' stream (revisions on stdin, as the history stream's): per
    merge, the `.py` files whose blob its first parent has otherwise (raw, no renames: a file
    renamed is one deleted and one added).  A tree diff per merge: no patches."""
    return [
        "-c", "core.quotepath=off", "-c", "diff.relative=false", *LOG_PINS, *PACK_WINDOWS,
        "log", "--merges", "--topo-order", "--reverse", "--full-history", "--sparse", "--no-color", "--no-ext-diff",
        "--no-textconv", "--no-notes", "--diff-merges=first-parent", "--raw", "--no-renames", "--no-abbrev",
        "--format=%x00M%x1f%H", *(["--stdin"] if from_stdin else ["HEAD"]), "--", PY_PATHSPEC,
    ]  # fmt: skip


def parse_merges(stream: Readable, chunk_size: int = 1 << 20) -> Iterator[tuple[str, list[FileDiff]]]:
    """(merge id, its files against its first parent) of the stream `merge_args` asks for."""
    pending = b""
    while True:
        chunk = stream.read(chunk_size)
        data = pending + chunk
        cut = len(data) if not chunk else data.rfind(b"\n" + MERGE_MARK) + 1
        for text in data[:cut].split(MERGE_MARK)[1:] if cut > 0 else ():
            sha, _, body = text.partition(b"\n")
            files = [found for line in body.split(b"\n") if line.startswith(b":") and (found := _raw(line)[0])]
            yield sha.decode("ascii"), files
        pending = data[cut:] if cut > 0 else data
        if not chunk:
            return


@dataclass(slots=True)
class Hunk:
    """One hunk of a `-U0` diff: old lines `old_start..+old_count` became the new ones.

    With no old lines, the new lines were inserted after old line `old_start`; with no new
    lines, the old ones were deleted after new line `new_start`.
    """

    old_start: int
    old_count: int
    new_start: int
    new_count: int
    removed: list[bytes] = field(default_factory=list)
    added: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class FileDiff:
    """One `.py` file a non-merge commit added (A), modified (M), deleted (D), renamed (R) or
    changed the type of (T); a side (path, blob) is None where the file does not exist."""

    status: str
    old_path: str | None
    new_path: str | None
    old_blob: str | None
    new_blob: str | None
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def lines_added(self) -> int:
        return sum(h.new_count for h in self.hunks)

    @property
    def lines_deleted(self) -> int:
        return sum(h.old_count for h in self.hunks)


@dataclass(slots=True)
class MergeFile:
    """A file whose merged version differs from the version of every parent: per parent its
    (path, blob) there (None where the parent has no such file), and the merged (path, blob)."""

    parents: list[tuple[str | None, str | None]]
    path: str
    blob: str | None


@dataclass(slots=True)
class CommitRecord:
    """One commit of the stream and its `.py` changes."""

    sha: str
    parents: list[str]
    author_name: str
    author_email: str
    author_time: int
    committer_name: str
    committer_email: str
    committer_time: int
    subject: str
    files: list[FileDiff] = field(default_factory=list)
    merge_files: list[MergeFile] = field(default_factory=list)

    @property
    def is_merge(self) -> bool:
        return len(self.parents) > 1


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ReadAhead:
    """A stream read in a thread of its own, up to `ahead` chunks before its reader: the tool
    writing it goes on while the walk works (a pipe holds 64 KiB: without this, git waits for
    the walk, and the walk for git).

    The pipe is widened to 1 MiB where the system allows it (`widen_pipe`): the thread then
    wakes, and takes the interpreter's lock from the walk, once a MiB rather than once every
    64 KiB (flask's cold walk: 2.50 -> 2.41 s, medians of five).
    """

    def __init__(self, stream: IO[bytes], chunk_size: int = 1 << 20, ahead: int = 4) -> None:
        widen_pipe(stream, chunk_size)
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._done = False
        self._thread = threading.Thread(
            target=self._run, args=(stream, chunk_size), name="codeintel-log-read-ahead", daemon=True
        )
        self._thread.start()

    def _run(self, stream: IO[bytes], chunk_size: int) -> None:
        try:
            # the first chunk is what the tool has written so far: the walk starts on the first
            # commits, not once a whole chunk is there (flask: its first MiB takes git 0.1 s, its
            # first commit 0.06); then whole chunks
            read1 = getattr(stream, "read1", None)
            chunk = read1(chunk_size) if read1 is not None else stream.read(chunk_size)
            while not self._stop.is_set():
                self._put(chunk)
                if not chunk:
                    return
                chunk = stream.read(chunk_size)
        except BaseException as exc:  # handed to the reader, raised there
            self._error = exc
            self._put(b"")

    def _put(self, chunk: bytes) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int = -1, /) -> bytes:
        """The next chunk (of any size); b"" at the end."""
        if self._done:
            return b""
        chunk = self._queue.get()
        if not chunk:
            self._done = True
            if self._error is not None:
                raise self._error
        return chunk

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def widen_pipe(stream: IO[bytes], size: int) -> None:
    """Let the pipe `stream` reads from hold `size` bytes (Linux's F_SETPIPE_SZ); where that is
    not possible (another system, not a pipe, past the system's limit) it stays as it is."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, size)
    except (ImportError, AttributeError, OSError, ValueError):
        pass


@contextmanager
def read_ahead(stream: IO[bytes]) -> Iterator[ReadAhead]:
    """`stream` read ahead in a thread (`ReadAhead`) until the block ends."""
    reader = ReadAhead(stream)
    try:
        yield reader
    finally:
        reader.close()


def parse_log(stream: Readable, chunk_size: int = 1 << 20) -> Iterator[CommitRecord]:
    """Commit records of the stream `log_args` asks for, one at a time, in stream order.

    The stream is read in large chunks and cut at commit headers; each commit's text is cut
    at patch and hunk headers with bytes searches (a history is millions of lines).
    """
    pending = b""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            break
        data = pending + chunk
        last = data.rfind(b"\n" + COMMIT_MARK)
        if last < 0:
            pending = data
            continue
        yield from _commits(data[: last + 1])
        pending = data[last + 1 :]
    if pending:
        yield from _commits(pending)


def _commits(data: bytes) -> Iterator[CommitRecord]:
    """The commits of a stretch of the stream that holds whole commits."""
    start = data.find(COMMIT_MARK)
    while start >= 0:
        end = data.find(b"\n" + COMMIT_MARK, start)
        text = data[start : end + 1] if end >= 0 else data[start:]
        yield _parse_commit(text)
        start = end + 1 if end >= 0 else -1


def _parse_commit(text: bytes) -> CommitRecord:
    header_end = text.find(b"\n")
    commit = _commit(text[:header_end] if header_end >= 0 else text)
    if header_end < 0:
        return commit
    body = text[header_end + 1 :]
    patches = body.split(b"\ndiff --")
    slots: list[FileDiff] = []  # the file each patch belongs to, in order
    for line in patches[0].split(b"\n"):
        if line.startswith(b"::"):
            commit.merge_files.append(_merge_raw(line))
        elif line.startswith(b":"):
            found, owners = _raw(line)
            if found is not None:
                commit.files.append(found)
            # the hunks of a patch of no usable change go nowhere
            slots.extend(found if owns and found is not None else _discard() for owns in owners)
    index = 0
    for patch in patches[1:]:
        if not patch.startswith(b"git "):  # "--cc" / "--combined": a merge's, not read
            continue
        if index < len(slots):
            slots[index].hunks = _hunks(patch)
        index += 1
    return commit


_HUNK_HEADER = re.compile(rb"\n@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@[^\n]*")


def _hunks(patch: bytes) -> list[Hunk]:
    hunks = []
    found = list(_HUNK_HEADER.finditer(patch))
    for k, m in enumerate(found):
        a, b, c, d = m.groups()
        hunk = Hunk(int(a), 1 if b is None else int(b), int(c), 1 if d is None else int(d))
        body = patch[m.end() + 1 : found[k + 1].start() if k + 1 < len(found) else len(patch)]
        lines = body.split(b"\n")
        if b"\n\\" in body or body.startswith(b"\\"):  # "\ No newline at end of file" among them
            lines = [line for line in lines if line[:1] in (b"-", b"+")]
        # -U0: the removed lines, then the added ones
        hunk.removed = [line[1:] for line in lines[: hunk.old_count]]
        hunk.added = [line[1:] for line in lines[hunk.old_count : hunk.old_count + hunk.new_count]]
        hunks.append(hunk)
    return hunks


def _commit(line: bytes) -> CommitRecord:
    parts = line[len(COMMIT_MARK) :].rstrip(b"\n").split(b"\x1f", 8)
    parts += [b""] * (9 - len(parts))
    sha, parents, aname, aemail, atime, cname, cemail, ctime, subject = parts
    return CommitRecord(
        sha.decode("ascii"),
        parents.decode("ascii").split(),
        _text(aname),
        _text(aemail),
        int(atime or 0),
        _text(cname),
        _text(cemail),
        int(ctime or 0),
        _text(subject),
    )


def _raw(line: bytes) -> tuple[FileDiff | None, tuple[bool, ...]]:
    """The change a raw line states (None when neither side is a regular file: a symlink or
    submodule named `*.py`), and, per patch git prints for it, whether that patch's hunks are
    the change's.  A type change gets two patches, the old side's deletion then the new side's
    addition: a symlink that becomes a regular file is the file's addition (the second
    patch's hunks), a regular file that becomes a symlink its deletion (the first's)."""
    # ":old_mode new_mode old_sha new_sha STATUS\tpath[\tnew_path]"
    meta, _, paths = line.rstrip(b"\n").partition(b"\t")
    old_mode, new_mode, old_sha, new_sha, status = meta[1:].split(b" ")
    names = [unquote_path(p) for p in paths.split(b"\t")]
    kind = status[:1].decode("ascii")
    old_path, new_path = (names[0], names[-1]) if kind in ("R", "C") else (names[0], names[0])
    old = (old_path, _blob(old_sha)) if _regular(old_mode) else (None, None)
    new = (new_path, _blob(new_sha)) if _regular(new_mode) else (None, None)
    type_change = kind == "T"
    if old[1] is None and new[1] is None:
        return None, (False, False) if type_change else (False,)
    if old[1] is None:
        return FileDiff("A", None, new[0], None, new[1]), (False, True) if type_change else (True,)
    if new[1] is None:
        return FileDiff("D", old[0], None, old[1], None), (True, False) if type_change else (True,)
    if type_change:  # both regular after all (a mode git calls a type change): no usable hunks
        return FileDiff("M", old[0], new[0], old[1], new[1]), (False, False)
    return FileDiff(kind if kind in ("M", "R") else "M", old[0], new[0], old[1], new[1]), (True,)


def _regular(mode: bytes) -> bool:
    """A regular file's mode (not 000000: absent, 120000: symlink, 160000: submodule)."""
    return mode.startswith(b"100")


def _discard() -> FileDiff:
    return FileDiff("D", None, None, None, None)


def _merge_raw(line: bytes) -> MergeFile:
    # "::m1 m2 mR sha1 sha2 shaR ST\tpath1\tpath2\tpathR" (--combined-all-paths)
    meta, _, paths = line.rstrip(b"\n").partition(b"\t")
    fields = meta.lstrip(b":").split(b" ")
    n = len(fields[-1])  # one status letter per parent
    shas = fields[n + 1 : 2 * n + 2]
    names = [unquote_path(p) for p in paths.split(b"\t")]
    if len(names) < n + 1:
        names = [names[-1]] * n + [names[-1]]
    status = fields[-1].decode("ascii")
    modes = fields[: n + 1]  # a symlink or submodule on a side is no file there (as in `_raw`)
    parents: list[tuple[str | None, str | None]] = [
        (None, None) if status[i] == "A" or not _regular(modes[i]) else (names[i], _blob(shas[i])) for i in range(n)
    ]
    return MergeFile(parents, names[n], _blob(shas[n]) if _regular(modes[n]) else None)


def _blob(sha: bytes) -> str | None:
    text = sha.decode("ascii")
    return None if text == NULL_BLOB else text


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


_ESCAPES = {ord("a"): 7, ord("b"): 8, ord("t"): 9, ord("n"): 10, ord("v"): 11, ord("f"): 12, ord("r"): 13}


def rerooted(commits: Iterable[CommitRecord], prefix: str) -> Iterator[CommitRecord]:
    """`commits` with their paths named from the directory `prefix` is (`RepoHistory.prefix`;
    "": the top, nothing to do).  git names files from the top even run in a directory below it
    (`--relative` would name them from there, but not in a merge's combined diff); the log's
    pathspec keeps every path inside it."""
    if not prefix:
        yield from commits
        return
    for commit in commits:
        for f in commit.files:
            f.old_path = f.old_path and unrooted(f.old_path, prefix)
            f.new_path = f.new_path and unrooted(f.new_path, prefix)
        for m in commit.merge_files:
            m.path = unrooted(m.path, prefix)
            m.parents = [(p and unrooted(p, prefix), blob) for p, blob in m.parents]
        yield commit


def unrooted(path: str, prefix: str) -> str:
    """`path` (from the repository's top) named from the directory `prefix` (inside it)."""
    return path[len(prefix) :] if prefix and path.startswith(prefix) else path


def unquote_path(raw: bytes) -> str:
    """A path as git prints it (C-quoted when it holds control characters, quotes or
    backslashes) as the file system names it: bytes that are not UTF-8 become surrogates."""
    if not raw.startswith(b'"') or not raw.endswith(b'"') or len(raw) < 2:
        return os.fsdecode(raw) if os.name != "nt" else raw.decode("utf-8", "surrogateescape")
    body, out, i = raw[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch != 0x5C or i + 1 >= len(body):  # not a backslash
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if 0x30 <= nxt <= 0x37:  # \ooo
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return bytes(out).decode("utf-8", "surrogateescape")
