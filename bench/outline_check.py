"""Check history outlines on a real repository: updated through each diff, as the walk does,
against a whole parse of each version.

Usage: ``python bench/outline_check.py REPO [--files 40] [--seed 3]``.  Samples files of HEAD
(the ones with the most commits first, then at random), and for each follows its versions
along the non-merge commits that changed it (parents first): the outline of a version is its
parent version's updated through the commit's `-U0` diff (`outline.update_outline`), never
parsed again, so a wrong update shows in every version after it.  Each version that parses
clean (tree-sitter without an error, or `ast`) is compared with its whole parse; the first
version where they differ is reported per file, with what differs.  Versions that neither
parser takes clean (Python 2 code) are skipped: their outline is a guess either way, and the
chain starts again from a whole parse after them.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import subprocess
import warnings
from pathlib import Path

from codeintel.ingestion.cst.parser import python_parser
from codeintel.ingestion.history.gitlog import Hunk
from codeintel.ingestion.history.outline import Def, decode_source, parse_outline, source_lines, update_outline, walk

_HUNK = re.compile(rb"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False).stdout


def hunks(repo: Path, sha: str, path: str) -> list[Hunk]:
    found: list[Hunk] = []
    for line in git(repo, "diff", "-U0", "--diff-algorithm=myers", "--no-color", f"{sha}^", sha, "--", path).split(b"\n"):
        m = _HUNK.match(line)
        if m:
            found.append(Hunk(int(m[1]), int(m[2] or 1), int(m[3]), int(m[4] or 1), [], []))
        elif found and line.startswith(b"-") and not line.startswith(b"---"):
            found[-1].removed.append(line[1:])
        elif found and line.startswith(b"+") and not line.startswith(b"+++"):
            found[-1].added.append(line[1:])
    return found


def clean(lines: list[str]) -> bool:
    text = "\n".join(lines) + "\n"
    if not python_parser().parse(text.encode("utf-8", "surrogatepass")).root_node.has_error:
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def signature(root: Def) -> list[tuple[str, str, int, int, int, int]]:
    return [(d.qualname, d.kind, d.start, d.line, d.body, d.end) for d in walk(root)]


def check_file(repo: Path, path: str) -> dict[str, object]:
    commits = git(repo, "log", "--topo-order", "--reverse", "--no-merges", "--format=%H", "HEAD", "--", path).decode().split()
    checked = 0
    outlines: dict[bytes, Def] = {}  # blob -> its outline, as updated (only versions that parse clean or came from one)
    for sha in commits:
        new_blob = git(repo, "rev-parse", "-q", "--verify", f"{sha}:{path}").strip()
        old_blob = git(repo, "rev-parse", "-q", "--verify", f"{sha}^:{path}").strip()
        new = source_lines(decode_source(git(repo, "cat-file", "blob", new_blob.decode())))
        root = outlines.get(old_blob)
        if root is None:  # a version not reached (another branch's, Python 2 before it): parsed whole
            outlines[new_blob] = parse_outline(new)[0]
            continue
        old = source_lines(decode_source(git(repo, "cat-file", "blob", old_blob.decode())))
        updated = update_outline(root, hunks(repo, sha, path), lambda new=new: new, len(old), len(new)).root
        if not clean(new):  # a guess either way: the next version starts from a whole parse
            continue
        outlines[new_blob] = updated
        checked += 1
        if signature(updated) != signature(parse_outline(new)[0]):
            mine, theirs = set(signature(updated)), set(signature(parse_outline(new)[0]))
            return {"path": path, "versions": len(commits), "checked": checked, "first_wrong": sha,
                    "updated_only": sorted(mine - theirs)[:4], "parsed_only": sorted(theirs - mine)[:4]}  # fmt: skip
    return {"path": path, "versions": len(commits), "checked": checked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    repo = args.repo.resolve()
    files = git(repo, "ls-files", "*.py").decode().split()
    counts = {p: len(git(repo, "log", "--format=%H", "--no-merges", "HEAD", "--", p).split()) for p in files}
    busiest = sorted(files, key=lambda p: -counts[p])[: args.files // 2]
    rest = [p for p in files if p not in set(busiest)]
    sample = busiest + random.Random(args.seed).sample(rest, min(len(rest), args.files - len(busiest)))
    results = [check_file(repo, p) for p in sample]
    wrong = [r for r in results if "first_wrong" in r]
    print(json.dumps({"files": len(results), "versions_checked": sum(int(r["checked"]) for r in results),  # type: ignore[call-overload]
                      "files_wrong": len(wrong), "wrong": wrong}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
