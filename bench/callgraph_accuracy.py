"""Score the call graph against PyCG-style ground truth (`callgraph.json` per case directory).

Usage: ``python bench/callgraph_accuracy.py CASES_DIR [--json OUT] [--in-process | --cli]``.
Every directory under CASES_DIR holding a ``callgraph.json`` is one case; every ``.py`` file
under it is analysed with module names relative to the case (``pkg/a.py`` -> ``pkg.a``,
``pkg/__init__.py`` -> ``pkg``; a case-level ``__init__.py`` has no module name and is skipped).
By default the product command ``python -m codeintel callgraph DIR --format pycg`` runs as a
subprocess when the CLI offers it; ``--in-process`` calls ``build_call_graph`` + ``to_pycg``
directly. Prints exact cases, edge precision/recall (micro and per category), the failing
cases with their missing/extra edges, and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from codeintel.analysis.callgraph import build_call_graph, to_pycg

Graph = dict[str, list[str]]


def case_files(case: Path) -> list[tuple[str, str, bool, str]]:
    """(path, module, is_package, text) of every Python file of one case."""
    files = []
    for path in sorted(case.rglob("*.py")):
        parts = list(path.relative_to(case).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        if not parts:
            continue
        files.append((str(path), ".".join(parts), is_package, path.read_text(encoding="utf-8")))
    return files


def graph_in_process(case: Path) -> Graph:
    facts, sites = build_call_graph(case_files(case))
    return to_pycg(sites, facts)


def cli_supports_pycg() -> bool:
    try:
        done = subprocess.run(
            [sys.executable, "-m", "codeintel", "callgraph", "--help"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "pycg" in done.stdout


def graph_from_cli(case: Path) -> Graph:
    done = subprocess.run(
        [sys.executable, "-m", "codeintel", "callgraph", str(case), "--format", "pycg"],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    graph: Graph = json.loads(done.stdout)
    return graph


def edges(graph: Graph) -> set[tuple[str, str]]:
    return {(caller, callee) for caller, callees in graph.items() for callee in callees}


def score(cases_dir: Path, use_cli: bool) -> dict[str, object]:
    per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # cases exact tp fp fn
    failures = []
    started = time.perf_counter()
    for truth_file in sorted(cases_dir.rglob("callgraph.json")):
        case = truth_file.parent
        name = str(case.relative_to(cases_dir))
        category = name.split("/")[0]
        expected = {k: sorted(v) for k, v in json.loads(truth_file.read_text()).items()}
        if use_cli:
            try:
                got = graph_from_cli(case)
            except (subprocess.CalledProcessError, json.JSONDecodeError) as error:
                print(f"CLI failed on {name} ({error}); scoring in-process", file=sys.stderr)
                use_cli = False
        if not use_cli:
            got = graph_in_process(case)
        got = {k: sorted(v) for k, v in got.items()}
        want, have = edges(expected), edges(got)
        counts = per_category[category]
        counts[0] += 1
        counts[1] += got == expected
        counts[2] += len(want & have)
        counts[3] += len(have - want)
        counts[4] += len(want - have)
        if got != expected:
            failures.append(
                {
                    "case": name,
                    "missing": sorted(map(list, want - have)),
                    "extra": sorted(map(list, have - want)),
                    "keys_missing": sorted(set(expected) - set(got)),
                    "keys_extra": sorted(set(got) - set(expected)),
                }
            )
    totals = [sum(c[i] for c in per_category.values()) for i in range(5)]
    return {
        "cases": totals[0],
        "exact": totals[1],
        **_pr(totals[2], totals[3], totals[4]),
        "seconds": round(time.perf_counter() - started, 2),
        "mode": "cli" if use_cli else "in-process",
        "categories": {
            cat: {"cases": c[0], "exact": c[1], **_pr(c[2], c[3], c[4])} for cat, c in sorted(per_category.items())
        },
        "failures": failures,
    }


def _pr(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": round(precision, 4), "recall": round(recall, 4)}


def print_table(summary: dict[str, object]) -> None:
    categories = summary["categories"]
    assert isinstance(categories, dict)
    print(f"{'category':<14}{'cases':>6}{'exact':>6}{'prec':>8}{'recall':>8}")
    for cat, c in categories.items():
        print(f"{cat:<14}{c['cases']:>6}{c['exact']:>6}{c['precision']:>8.3f}{c['recall']:>8.3f}")
    print(
        f"{'TOTAL':<14}{summary['cases']:>6}{summary['exact']:>6}"
        f"{summary['precision']:>8.3f}{summary['recall']:>8.3f}   ({summary['mode']}, {summary['seconds']} s)"
    )
    failures = summary["failures"]
    assert isinstance(failures, list)
    for failure in failures:
        print(f"  not exact: {failure['case']}")
        for label in ("missing", "extra", "keys_missing", "keys_extra"):
            if failure[label]:
                print(f"    {label}: {failure[label]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases_dir", type=Path)
    parser.add_argument("--json", type=Path, help="write the summary here")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--in-process", action="store_true", help="call the library directly")
    mode.add_argument("--cli", action="store_true", help="always run the product command")
    args = parser.parse_args(argv)
    use_cli = args.cli or (not args.in_process and cli_supports_pycg())
    summary = score(args.cases_dir, use_cli)
    print_table(summary)
    text = json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=2)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
