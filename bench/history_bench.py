"""Benchmark the git history steps, and measure their attribution against `git log -L`.

    python bench/history_bench.py REPO_OR_BUNDLE [--agreement 120] [--seed 12] [--skip-full]
                                  [--new-commits 10] [--json OUT] [--details OUT]
    python bench/history_bench.py CLONE --db DB --agreement 150 [--details OUT]
    python bench/history_bench.py REPO_OR_BUNDLE --pydriller [--last 1000]

The second form only measures the agreement, on a database already built from CLONE (at its
HEAD; `codeintel export CLONE --db DB --select goids git_history` is enough).

The repository (a path or a git bundle) is cloned into a temporary directory, and the codeintel
package byte-compiled first, as an installation has it (`measure.compile_package`).  Measured, on
the same machine at the same time:

- F: `git log -p -U0 -M --full-index -- '*.py'` (its output thrown away), the floor.
- cold: the whole history walked (`--select git_history` in a fresh process): wall time, the
  step's own time, peak RSS of the largest process and of the whole tree (git included).
  With `--runs N` (default 3) F and a cold walk are measured N times in turn, so that both sides
  of each ratio see the same machine (on a shared VM either swings by 10 % within minutes): the
  figure is the run of the median ratio, every pair is listed (`cold_runs`) with the highest
  peaks of all runs.
- incremental: the clone reset to a commit N commits before HEAD, indexed, moved to HEAD,
  indexed again: the step's time for the N new commits; then a run with no new commit; the
  tables of the incremental database are compared with those of the cold one.
- analytics: each history analytics query timed on the cold database (after the code
  analysis the hotspots need).
- PyDriller (`--pydriller`, alone: `pip install -e ".[bench]"`): the anchor the issue names,
  `changed_methods` of every modified `.py` file of every commit (or of the `--last N`), in a
  fresh interpreter on a fresh clone: its time and peak RSS, and the per-commit facts it found.
- agreement (`--agreement N`): N functions and methods of HEAD sampled (fixed seed); for each,
  the commits `history.function_changes` attributes to it (rows with lines, and its creation)
  against the commits `git log -L START,END:PATH` lists for its current span.  Precision and
  recall are given over all pairs (micro) and per function (macro); the disagreements are
  listed by kind; `--details` writes both lists of every sampled function.  What the lists
  can be compared on (`raw` and `tight`) is explained in `agreement`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import psutil
from measure import compile_package

from codeintel.analysis.definitions import walk_definitions

RUNNER = """
import json, sys, time
from codeintel.cli import build_config, build_parser
from codeintel.orchestration.context import PipelineContext
from codeintel.orchestration.steps import run_pipeline
args = build_parser().parse_args(sys.argv[1:])
cfg = build_config(args, "bench")
t0 = time.perf_counter()
with PipelineContext(cfg) as ctx:
    run = run_pipeline(ctx, args.select, args.exclude)
print(json.dumps({"pipeline_s": time.perf_counter() - t0}))
"""

HISTORY_TABLES = {
    "history.commits": "sha",
    "history.file_changes": "sha, path",
    "history.function_changes": "sha, lineage_id",
    "history.head_files": "path",
    "history.head_defs": "goid",
    "history.lineages": "lineage_id",
    "history.versions": "path, blob",
    "history.merge_lineages": "sha, lineage_id",
    "history.discarded_changes": "sha, lineage_id",
}


def _process_kind(p: psutil.Process) -> str:
    """What a process of the export is: the export itself, the history walk apart, or a tool."""
    args = p.cmdline()
    if "codeintel.ingestion.history.apart" in args:
        return "history walk"
    if args and args[0].endswith("git"):
        return "git " + next((a for a in args[1:] if not a.startswith("-") and "=" not in a), "")
    return Path(args[0]).name if args else "?"


def run_measured(argv: list[str]) -> dict[str, Any]:
    """One export in a fresh interpreter: wall time, and peak RSS of the largest process and of
    the whole tree, sampled every 20 ms; the peak of each kind of process (`_process_kind`);
    and the peak of the tree's PSS (every 200 ms: reading it costs more), which counts a page
    that processes share once, split between them (two git processes map the same pack files:
    their RSS counts those pages twice)."""
    started = time.perf_counter()
    proc = psutil.Popen([sys.executable, "-c", RUNNER, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = peak_one = peak_pss = 0
    kinds: dict[int, str] = {}
    peaks: dict[str, int] = {}
    at_peak: list[tuple[str, int]] = []  # the tree's processes when it was largest
    samples = 0
    while proc.poll() is None:
        samples += 1
        try:
            rss = []
            members: list[tuple[str, int]] = []
            pss = 0
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    if samples % 10 == 0:
                        pss += p.memory_full_info().pss
                    one = p.memory_info().rss
                    kind = kinds.get(p.pid) or ("export" if p.pid == proc.pid else _process_kind(p))
                    if not kind.startswith("python"):  # a child not yet started is a python too
                        kinds[p.pid] = kind
                except psutil.Error:
                    continue
                rss.append(one)
                members.append((kind, one))
                peaks[kind] = max(peaks.get(kind, 0), one)
            if sum(rss) > peak_tree:
                at_peak = members
            peak_tree, peak_one = max(peak_tree, sum(rss)), max(peak_one, max(rss, default=0))
            peak_pss = max(peak_pss, pss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"export failed ({proc.returncode}):\n{err[-3000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "pipeline_s": round(float(result["pipeline_s"]), 3),
        "peak_rss_largest_mb": round(peak_one / 2**20, 1),
        "peak_rss_tree_mb": round(peak_tree / 2**20, 1),
        "peak_pss_tree_mb": round(peak_pss / 2**20, 1),
        "peak_rss_by_process_mb": {k: round(v / 2**20, 1) for k, v in sorted(peaks.items(), key=lambda kv: -kv[1])},
        "tree_at_peak_mb": [f"{kind} {one / 2**20:.1f}" for kind, one in sorted(at_peak, key=lambda m: -m[1])],
    }


def step_seconds(db: Path, step: str) -> float:
    con = duckdb.connect(str(db), read_only=True)
    try:
        found = con.execute(
            "SELECT epoch(finished_at) - epoch(started_at), note FROM meta.step_runs WHERE step = ? "
            "ORDER BY started_at DESC LIMIT 1",
            [step],
        ).fetchone()
    finally:
        con.close()
    return round(float(found[0]), 3) if found else float("nan")


def step_note(db: Path, step: str) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        found = con.execute("SELECT note FROM meta.step_runs WHERE step = ? ORDER BY started_at DESC LIMIT 1", [step]).fetchone()
    finally:
        con.close()
    return str(found[0]) if found else ""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def floor_seconds(repo: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["git", "log", "-p", "-U0", "-M", "--full-index", "--", "*.py"], cwd=repo, stdout=subprocess.DEVNULL, check=True
    )
    return round(time.perf_counter() - started, 3)


def export_args(repo: Path, db: Path, *select: str) -> list[str]:
    return ["export", str(repo), "--db", str(db), "--workers", "2", "--quiet", *(["--select", *select] if select else [])]


def digests(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: hashlib.blake2b(repr(con.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall()).encode(), digest_size=12).hexdigest()
            for t, o in HISTORY_TABLES.items()
        }
    finally:
        con.close()


def commit_before(repo: Path, n: int) -> tuple[str, int]:
    """A first-parent ancestor of HEAD with at least `n` commits after it; that count."""
    for sha in git(repo, "rev-list", "--first-parent", "HEAD").split()[1:]:
        count = int(git(repo, "rev-list", "--count", f"{sha}..HEAD").strip())
        if count >= n:
            return sha, count
    raise SystemExit(f"the history has fewer than {n} commits")


def analytics_seconds(db: Path) -> dict[str, float]:
    from codeintel.analysis.history import (
        HistoryAnalyticsSettings,
        change_coupling_sql,
        file_history_sql,
        function_history_sql,
        hotspots_sql,
        lineages_sql,
        ownership_sql,
    )

    settings = HistoryAnalyticsSettings()
    queries = {
        "lineages": lineages_sql(only_touched=False),
        "function_history": function_history_sql(),
        "file_history": file_history_sql(),
        "hotspots": hotspots_sql(settings),
        "change_coupling": change_coupling_sql(settings),
        "ownership": ownership_sql(),
    }
    con = duckdb.connect(str(db), read_only=True)
    out = {}
    try:
        for name, sql in queries.items():
            started = time.perf_counter()
            con.execute(f"SELECT count(*) FROM ({sql})").fetchone()
            out[name] = round(time.perf_counter() - started, 3)
    finally:
        con.close()
    return out


# ------------------------------------------------------------------------------------ agreement


def agreement(repo: Path, db: Path, n: int, seed: int, details: Path | None = None) -> dict[str, Any]:
    """Precision and recall of the commits attributed to sampled functions vs `git log -L`.

    Attributed to a function: the commits of its lineage that changed its lines, created it,
    or moved it from another file (not a whole-file rename, which leaves its lines alone).

    `git log -L` follows a line range back through the diffs; where a hunk rewrote the range,
    it continues with the whole block that hunk replaced, and from there lists the commits of
    whatever was in that block (a function rewritten inside a rewritten class inherits the
    class's history); and it does not follow a function moved from another file (a split, a
    class moved to a new module) nor one moved within its file (the range is then all new lines,
    and `git log -L` goes on with the lines its hunk replaced).  So two comparisons: over all
    commits (`raw`), and `tight`: both lists cut where `git log -L` stops following the
    function's own lines (its range first grows past twice the function's size and 10 lines, or
    every non-blank line of the range is new in a commit: written or moved there), and at the
    function's last move from another file: the commits older than that left out of both.  In both,
    the commits that are one change landed twice (a cherry-pick: same author, author time and
    subject) count as one: `git log -L` follows one side of a merge where both agree.
    `tight_edges`: `tight` without the commits only we list that change nothing of the function
    but lines right before its first line or right after its last, deleted: a pure deletion
    next to a range is outside it, so `git log -L` never lists one (checked on a three-commit
    repository: deleting a function's last line is not listed, deleting a middle one is).
    """
    con = duckdb.connect(str(db), read_only=True)
    try:
        functions = con.execute(
            """SELECT g.goid, g.path, g.qualname, g.start_line, g.end_line, h.lineage_id
               FROM core.goids g JOIN history.head_defs h USING (goid)
               WHERE g.kind IN ('function', 'method') ORDER BY g.goid"""
        ).fetchall()
        sample = random.Random(seed).sample(functions, min(n, len(functions)))
        generation = dict(con.execute("SELECT sha, generation FROM history.commits").fetchall())
        renames = {(sha, old, new) for sha, old, new in con.execute(
            "SELECT sha, old_path, path FROM history.file_changes WHERE status = 'R'").fetchall()}  # fmt: skip
        ours: dict[str, set[str]] = {}
        where: dict[str, dict[str, tuple[str, str | None]]] = {}  # per sha: the path then, and before
        names: dict[str, dict[str, tuple[str, str]]] = {}  # per sha: the qualname then, and before
        moved_in: dict[str, int] = {}  # generation of the last move from another file (not a file rename)
        for goid, _, _, _, _, lineage in sample:
            rows = con.execute(
                "SELECT sha, event, lines_added + lines_deleted, old_path, path, qualname, old_qualname "
                # (the product's rule: not the changes no merge took towards HEAD)
                "FROM history.function_changes ANTI JOIN history.discarded_changes USING (sha, lineage_id) "
                "WHERE lineage_id = ?",
                [lineage],
            ).fetchall()
            names[goid] = {r[0]: (r[5], r[6] or r[5]) for r in rows}
            rows = [r[:5] for r in rows]
            where[goid] = {sha: (path, old_path) for sha, _, _, old_path, path in rows}
            ours[goid] = {
                sha for sha, event, lines, old_path, path in rows
                if lines > 0 or event == "created" or (event == "moved" and old_path and (sha, old_path, path) not in renames)
            }  # fmt: skip
            moves = [
                generation.get(sha, 0) for sha, event, _, old_path, path in rows
                if event == "moved" and old_path and (sha, old_path, path) not in renames
            ]  # fmt: skip
            moved_in[goid] = max(moves, default=0)
    finally:
        con.close()
    totals = {"raw": [0, 0, 0], "tight": [0, 0, 0], "tight_edges": [0, 0, 0]}  # true positives, ours only, theirs only
    per_function: dict[str, list[tuple[float, float]]] = {"raw": [], "tight": [], "tight_edges": []}
    kinds: Counter[str] = Counter()
    text_check: Counter[str] = Counter()
    worst = []
    started = time.perf_counter()
    dumped = []
    same = _same_changes(repo)
    for goid, path, qualname, start, end, lineage in sample:
        listed, cut = _git_log_l(repo, path, start, end)
        listed = [same.get(sha, sha) for sha in listed]
        mine = {same.get(sha, sha) for sha in ours[goid]}
        dumped.append({"path": path, "qualname": qualname, "span": [start, end], "lineage": lineage, "cut": cut,
                       "moved_in": moved_in[goid], "ours": sorted(mine, key=lambda s: -generation.get(s, 0)),
                       "git_log_L": listed})  # fmt: skip
        for mode in ("raw", "tight"):
            theirs = set(listed if mode == "raw" else listed[: cut + 1] if cut is not None else listed)
            kept = mine
            if mode == "tight":  # what `git log -L` can see: since its range grew, since the function came from another file
                floor = max(generation.get(listed[cut], 0) if cut is not None else 0, moved_in[goid])
                kept = {sha for sha in mine if generation.get(sha, 0) >= floor}
                theirs = {sha for sha in theirs if generation.get(sha, 0) >= floor}
            both = kept & theirs
            t = totals[mode]
            t[0], t[1], t[2] = t[0] + len(both), t[1] + len(kept - theirs), t[2] + len(theirs - kept)
            per_function[mode].append((len(both) / len(kept) if kept else 1.0, len(both) / len(theirs) if theirs else 1.0))
            if mode == "tight":
                edges = 0
                for sha in kept - theirs:  # is git log -L or are we wrong? the function's own text says
                    (now_path, old_path), (now_name, old_name) = where[goid][sha], names[goid][sha]
                    before = _function_text(repo, f"{sha}^", old_path or now_path, old_name)
                    after = _function_text(repo, sha, now_path, now_name)
                    verdict = "unknown" if before is None or after is None else "changed" if before != after else "same"
                    if verdict == "changed" and _edge_deletions_only(repo, sha, now_path, old_path, now_name):
                        verdict = "changed: lines deleted at its first or last line alone"
                        edges += 1
                    text_check[verdict] += 1
                # what git log -L cannot list: a commit that only deletes lines right before a
                # function's first line or right after its last (its range holds neither)
                t = totals["tight_edges"]
                t[0], t[1], t[2] = t[0] + len(both), t[1] + len(kept - theirs) - edges, t[2] + len(theirs - kept)
                seen = len(kept) - edges
                per_function["tight_edges"].append((len(both) / seen if seen else 1.0, len(both) / len(theirs) if theirs else 1.0))
            if mode == "tight" and kept != theirs:
                kinds["ours only"] += len(kept - theirs)
                kinds["git log -L only"] += len(theirs - kept)
                worst.append((len(kept ^ theirs), f"{path}::{qualname}", sorted(kept - theirs)[:3], sorted(theirs - kept)[:3]))
        kinds["git log -L list cut (older commits not the function's)" if cut is not None and cut < len(listed) - 1 else "git log -L list whole"] += 1
    worst.sort(reverse=True)
    if details is not None:
        details.write_text(json.dumps({"generation": {s: generation.get(s, 0) for d in dumped for s in d["ours"] + d["git_log_L"]},
                                       "functions": dumped}, indent=1))  # fmt: skip
    result: dict[str, Any] = {"functions": len(sample), "seed": seed}
    for mode, (tp, fp, fn) in totals.items():
        pairs = per_function[mode]
        result[mode] = {
            "precision_micro": round(tp / (tp + fp), 4) if tp + fp else 1.0,
            "recall_micro": round(tp / (tp + fn), 4) if tp + fn else 1.0,
            "precision_macro": round(sum(p for p, _ in pairs) / len(pairs), 4) if pairs else 1.0,
            "recall_macro": round(sum(r for _, r in pairs) / len(pairs), 4) if pairs else 1.0,
            "commits_ours": tp + fp,
            "commits_git_log_L": tp + fn,
        }
    result.update(disagreements=dict(kinds), worst=worst[:10], git_log_L_s=round(time.perf_counter() - started, 1))
    # the commits only we attribute (tight): does the function's text (by its name then, at the
    # commit's first parent and at the commit) differ?  "same": a move that changed no line of it
    result["ours_only_by_text"] = dict(text_check)
    return result


def _function_text(repo: Path, rev: str, path: str, qualname: str) -> str | None:
    """The source of the definition named `qualname` in `path` at `rev` (ast, else tree-sitter
    for code ast cannot parse), or None."""
    found = _function_lines(repo, rev, path, qualname)
    return found[2] if found is not None else None


def _function_lines(repo: Path, rev: str, path: str, qualname: str) -> tuple[int, int, str] | None:
    """The first and last line and the source of the definition named `qualname` in `path` at
    `rev`, or None."""
    shown = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], capture_output=True, check=False)
    if shown.returncode != 0:
        return None
    data = shown.stdout
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return _function_lines_ts(data, qualname)
    lines = data.decode("utf-8", "replace").splitlines()
    for node, name, *_ in walk_definitions(tree):
        if name == qualname:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            end = node.end_lineno or node.lineno
            return start, end, "\n".join(lines[start - 1 : end])
    return None


def _edge_deletions_only(repo: Path, sha: str, path: str, old_path: str | None, qualname: str) -> bool:
    """Whether what commit `sha` changed of the function `qualname` (in `path` there) is lines
    deleted right before its first line or right after its last, nothing else: lines `git log -L`
    cannot see (a pure deletion next to its range is outside it).  False for a merge."""
    span = _function_lines(repo, sha, path, qualname)
    if span is None:
        return False
    start, end, _ = span
    diff = subprocess.run(
        ["git", "-C", str(repo), "diff", "-M", "-U0", "--no-color", f"{sha}^", sha, "--", *{path, old_path or path}],
        capture_output=True, text=True, errors="replace", check=False,
    )  # fmt: skip
    if diff.returncode != 0 or len(git(repo, "rev-list", "--parents", "-n", "1", sha).split()) != 2:
        return False
    touching = []
    for m in re.finditer(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", diff.stdout, re.MULTILINE):
        first, count = int(m.group(1)), int(m.group(2) if m.group(2) is not None else 1)
        if count and first <= end and first + count - 1 >= start:
            touching.append(False)  # lines of the function written
        elif not count and start - 1 <= first <= end:  # deleted after new line `first`
            touching.append(first in (start - 1, end))
    return bool(touching) and all(touching)


def _function_lines_ts(data: bytes, qualname: str) -> tuple[int, int, str] | None:
    import tree_sitter
    import tree_sitter_python

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    blocks = {"block", "if_statement", "elif_clause", "else_clause", "try_statement", "except_clause",
              "finally_clause", "with_statement", "for_statement", "while_statement"}  # fmt: skip
    stack: list[tuple[Any, str]] = [(parser.parse(data).root_node, "")]
    while stack:
        node, prefix = stack.pop()
        for child in node.children:
            defn = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
            if defn is not None and defn.type in ("function_definition", "class_definition"):
                name = defn.child_by_field_name("name").text.decode()
                full = f"{prefix}.{name}" if prefix else name
                if full == qualname:
                    text = data[child.start_byte : child.end_byte].decode("utf-8", "replace")
                    return child.start_point[0] + 1, child.end_point[0] + 1, text
                stack.append((defn.child_by_field_name("body"), full))
            elif child.type in blocks:
                stack.append((child, prefix))
    return None


def _same_changes(repo: Path) -> dict[str, str]:
    """Commits that are one change landed twice (a cherry-pick, the same patch on two branches:
    same author, author time and subject) -> the one that stands for them all.  `git log -L`
    lists one of them (through a merge where both parents agree it follows one); the walk
    attributes each, as it changed the function on its branch."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for line in git(repo, "log", "--format=%H%x1f%aE%x1f%at%x1f%s", "HEAD").splitlines():
        sha, *key = line.split("\x1f")
        groups.setdefault((key[0], key[1], key[2] if len(key) > 2 else ""), []).append(sha)
    return {sha: min(shas) for shas in groups.values() if len(shas) > 1 for sha in shas}


def _git_log_l(repo: Path, path: str, start: int, end: int) -> tuple[list[str], int | None]:
    """The commits `git log -L` lists for a span (newest first), and the index of the first one
    from which its list no longer follows the function's own lines: the range it follows grew
    past twice the span (and 10 lines), or every non-blank line of the range is new there (the
    function was written there, or moved there from elsewhere in the file: older commits are
    those of the lines its hunk replaced)."""
    out = subprocess.run(
        ["git", "log", "-L", f"{start},{end}:{path}", "--format=%x00%H", "--no-color"],
        cwd=repo, capture_output=True, text=True, errors="replace", check=True,
    ).stdout  # fmt: skip
    shas: list[str] = []
    cut = None
    size = end - start + 1
    kept = added = 0
    in_hunk = False

    def fresh() -> bool:
        return bool(shas) and in_hunk and added > 0 and kept == 0

    for line in out.split("\n"):
        if line.startswith("\0"):
            if cut is None and fresh():
                cut = len(shas) - 1
            shas.append(line[1:].strip())
            kept = added = 0
            in_hunk = False
        elif line.startswith("@@ ") and cut is None:
            in_hunk = True
            old = line.split(" ")[1]  # -a,b
            length = int(old.split(",")[1]) if "," in old else 1
            if length > 2 * size + 10:
                cut = len(shas) - 1
        elif in_hunk and line.startswith(" ") and line.strip():
            kept += 1
        elif in_hunk and line.startswith("+") and line[1:].strip():
            added += 1
    if cut is None and fresh():
        cut = len(shas) - 1
    return shas, cut


# ------------------------------------------------------------------------------------ metrics over time


TIMESERIES_TABLES = {
    "analytics.history_timeseries": "sample_time, scope, path, qualname, ordinal",
    "history.timeseries_samples": "sample_time",
    "history.timeseries_files": "sample_time, path",
    "history.timeseries_blobs": "blob, kind, qualname, ordinal",
}


def timeseries_bench(source: str, work: Path, workers: int = 2) -> dict[str, Any]:
    """The 52-week backfill (`history_timeseries` on a database that has the history and the
    GOIDs): the step's time and peak RSS, against `ast.parse` alone on every distinct blob the
    step read (one process, contents read beforehand); the same step with one worker; a run with
    nothing new; and an incremental run (the clone two weeks back, then at HEAD) against the cold
    tables."""
    repo = work / "ts_repo"
    subprocess.run(["git", "clone", "-q", source, str(repo)], check=True)
    db = work / "ts" / "c.duckdb"
    run_measured([*export_args(repo, db, "git_history", "goids")])
    args = ["export", str(repo), "--db", str(db), "--quiet", "--select", "history_timeseries"]
    backfill = run_measured([*args, "--workers", str(workers)])
    backfill.update(step_s=step_seconds(db, "history_timeseries"), note=step_note(db, "history_timeseries"))
    serial = run_measured([*args, "--workers", "1", "--full"])
    serial.update(step_s=step_seconds(db, "history_timeseries"), note=step_note(db, "history_timeseries"))
    baseline = _parse_baseline(repo, db)
    run_measured([*args, "--workers", str(workers)])
    nothing_new_s = step_seconds(db, "history_timeseries")
    # incremental: two weeks of first-parent commits back, indexed, then HEAD
    head = git(repo, "rev-parse", "HEAD").strip()
    head_time = int(git(repo, "log", "-1", "--format=%ct", head))
    base = git(repo, "rev-list", "--first-parent", "-1", f"--before={head_time - 14 * 86400}", head).strip()
    inc_db = work / "ts_inc" / "c.duckdb"
    git(repo, "checkout", "-q", "--detach", base)
    run_measured([*export_args(repo, inc_db, "git_history", "goids", "history_timeseries")])
    git(repo, "checkout", "-q", "--detach", head)
    run_measured([*export_args(repo, inc_db, "git_history", "goids", "history_timeseries")])
    con = duckdb.connect(str(db), read_only=True)
    try:
        counts = dict(con.execute(
            "SELECT 'samples', count(*) FROM history.timeseries_samples UNION ALL "
            "SELECT 'function_rows', count(*) FROM analytics.history_timeseries WHERE scope = 'function' UNION ALL "
            "SELECT 'module_rows', count(*) FROM analytics.history_timeseries WHERE scope = 'module' UNION ALL "
            "SELECT 'tree_sitter_blobs', count(*) FROM history.timeseries_blobs WHERE kind = 'module' AND parser = 'tree-sitter' "
            "UNION ALL SELECT 'rows_without_goid', count(*) FROM analytics.history_timeseries WHERE goid IS NULL"
        ).fetchall())  # fmt: skip
    finally:
        con.close()
    return {
        **counts,
        "backfill": backfill,
        "backfill_one_worker": serial,
        "ast_parse": baseline,
        "backfill_over_parse": round(backfill["step_s"] / baseline["parse_s"], 2),
        "one_worker_over_parse": round(serial["step_s"] / baseline["parse_s"], 2),
        "nothing_new_step_s": nothing_new_s,
        "incremental": {
            "from": base[:12], "step_s": step_seconds(inc_db, "history_timeseries"),
            "note": step_note(inc_db, "history_timeseries"),
            "tables_equal_cold": _timeseries_digests(inc_db) == _timeseries_digests(db),
        },
    }  # fmt: skip


def _parse_baseline(repo: Path, db: Path) -> dict[str, Any]:
    """`ast.parse` of every distinct blob the timeseries measured, contents read beforehand."""
    import ast
    import warnings

    con = duckdb.connect(str(db), read_only=True)
    try:
        blobs = [r[0] for r in con.execute("SELECT blob FROM history.timeseries_blobs WHERE kind = 'module'").fetchall()]
    finally:
        con.close()
    proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out, _ = proc.communicate(("\n".join(blobs) + "\n").encode())
    contents, at = [], 0
    while at < len(out):
        nl = out.index(b"\n", at)
        size = int(out[at:nl].split()[2])
        contents.append(out[nl + 1 : nl + 1 + size])
        at = nl + 2 + size
    failed = 0
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for data in contents:
            try:
                ast.parse(data)
            except (SyntaxError, ValueError):
                failed += 1
    return {
        "blobs": len(contents), "mb": round(sum(map(len, contents)) / 2**20, 1),
        "parse_s": round(time.perf_counter() - started, 3), "not_parsed": failed,
    }  # fmt: skip


def _timeseries_digests(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: hashlib.blake2b(repr(con.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall()).encode(), digest_size=12).hexdigest()
            for t, o in TIMESERIES_TABLES.items()
        }
    finally:
        con.close()


PYDRILLER = """
import json, subprocess, sys, time, resource
from pydriller import Repository
repo, last = sys.argv[1], int(sys.argv[2])
since = {}
if last:
    shas = subprocess.run(["git", "rev-list", "--topo-order", f"--max-count={last}", "HEAD"], cwd=repo,
                          capture_output=True, text=True, check=True).stdout.split()
    since = {"from_commit": shas[-1]}
started = time.perf_counter()
commits = files = methods = 0
for commit in Repository(repo, only_modifications_with_file_types=[".py"], **since).traverse_commits():
    commits += 1
    for modified in commit.modified_files:
        if modified.filename.endswith(".py"):
            files += 1
            methods += len(modified.changed_methods)
print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "commits": commits, "files": files,
                  "changed_methods": methods, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10}))
"""


def pydriller_bench(source: str, work: Path, last: int) -> dict[str, Any]:
    """PyDriller's `changed_methods` over the history of a fresh clone of `source` (or its `last`
    commits), in a fresh interpreter: the anchor of the issue's figures."""
    repo = work / "repo"
    subprocess.run(["git", "clone", "-q", source, str(repo)], check=True)
    out = subprocess.run([sys.executable, "-c", PYDRILLER, str(repo), str(last)], capture_output=True, text=True, check=True)
    return {"last_commits": last or "all", **json.loads(out.stdout.strip().splitlines()[-1])}


# ------------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo")
    parser.add_argument("--agreement", type=int, default=0, help="functions to check against git log -L")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--new-commits", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="cold walks, each right after an F: the median ratio is the figure")
    parser.add_argument("--skip-full", action="store_true", help="no full pipeline (no hotspots, no agreement)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--db", type=Path, help="agreement only, on this database built from REPO (a clone at its HEAD)")
    parser.add_argument("--details", type=Path, help="write each sampled function's commit lists here (JSON)")
    parser.add_argument("--timeseries", action="store_true", help="only the metrics-over-time backfill (timeseries_bench)")
    parser.add_argument("--pydriller", action="store_true", help="only PyDriller's changed_methods (the anchor)")
    parser.add_argument("--last", type=int, default=0, help="with --pydriller: the last N commits only")
    args = parser.parse_args()
    compile_package()
    results: dict[str, Any] = {"repo": args.repo}
    if args.pydriller:
        with tempfile.TemporaryDirectory(prefix="histbench") as tmp:
            results["pydriller"] = pydriller_bench(args.repo, Path(tmp), args.last)
        print(json.dumps(results, indent=2))
        return 0
    if args.timeseries:
        with tempfile.TemporaryDirectory(prefix="histbench") as tmp:
            results["timeseries"] = timeseries_bench(args.repo, Path(tmp))
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    if args.db:
        results["agreement"] = agreement(Path(args.repo), args.db, args.agreement or 150, args.seed, args.details)
        print(json.dumps(results, indent=2))
        return 0
    with tempfile.TemporaryDirectory(prefix="histbench") as tmp:
        work = Path(tmp)
        repo = work / "repo"
        subprocess.run(["git", "clone", "-q", args.repo, str(repo)], check=True)
        results["commits"] = int(git(repo, "rev-list", "--count", "HEAD").strip())
        cold_db = work / "cold" / "c.duckdb"
        pairs = []  # (F, cold run), each F measured right before its cold walk
        for run in range(args.runs):
            floor = floor_seconds(repo)
            db = cold_db if run == 0 else work / f"cold{run}" / "c.duckdb"  # the first is kept
            cold = run_measured(export_args(repo, db, "git_history"))
            cold["step_s"] = step_seconds(db, "git_history")
            cold["note"] = step_note(db, "git_history")
            cold["over_F"] = round(cold["step_s"] / floor, 2)
            pairs.append((floor, cold))
            print(json.dumps({"floor_F_s": floor, "cold": cold}), flush=True)
            if run:
                shutil.rmtree(db.parent, ignore_errors=True)
        middle = sorted(pairs, key=lambda pair: pair[1]["over_F"])[len(pairs) // 2]  # the median ratio's run
        results["floor_F_s"], results["cold"] = middle
        results["cold_over_F"] = middle[1]["over_F"]
        if len(pairs) > 1:
            results["cold_runs"] = [
                {"floor_F_s": f, "step_s": c["step_s"], "over_F": c["over_F"], "peak_rss_largest_mb": c["peak_rss_largest_mb"],
                 "peak_rss_tree_mb": c["peak_rss_tree_mb"]}
                for f, c in pairs
            ]  # fmt: skip
            results["peak_rss_largest_mb_max"] = max(c["peak_rss_largest_mb"] for _, c in pairs)
            results["peak_rss_tree_mb_max"] = max(c["peak_rss_tree_mb"] for _, c in pairs)
        # incremental: N commits before HEAD, then HEAD, then nothing new
        head = git(repo, "rev-parse", "HEAD").strip()
        base, count = commit_before(repo, args.new_commits)
        inc_db = work / "inc" / "c.duckdb"
        git(repo, "checkout", "-q", "--detach", base)
        run_measured(export_args(repo, inc_db, "git_history"))
        git(repo, "checkout", "-q", "--detach", head)
        run_measured(export_args(repo, inc_db, "git_history"))
        incremental = {"new_commits": count, "step_s": step_seconds(inc_db, "git_history"), "note": step_note(inc_db, "git_history")}
        run_measured(export_args(repo, inc_db, "git_history"))
        incremental["no_new_commit_step_s"] = step_seconds(inc_db, "git_history")
        incremental["tables_equal_cold"] = digests(inc_db) == digests(cold_db)
        results["incremental"] = incremental
        print(json.dumps({"incremental": incremental}), flush=True)
        if not args.skip_full:
            full = run_measured(export_args(repo, cold_db))
            results["full_pipeline"] = full
            results["analytics_sql_s"] = analytics_seconds(cold_db)
            results["analytics_steps_s"] = {
                s: step_seconds(cold_db, s) for s in ("function_history", "hotspots", "change_coupling", "ownership")
            }
            print(json.dumps({"analytics_sql_s": results["analytics_sql_s"]}), flush=True)
            if args.agreement:
                results["agreement"] = agreement(repo, cold_db, args.agreement, args.seed, args.details)
        shutil.rmtree(work / "inc", ignore_errors=True)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
