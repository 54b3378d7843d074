"""Compare our cyclomatic complexity with radon's ``cc_visit`` on every Python file of a repository.

Usage: ``python bench/metrics_vs_radon.py REPO [--json OUT]``. Files come from
``git ls-files '*.py'``; each is parsed once and the same tree is fed to
``codeintel.analysis.metrics.compute_function_metrics`` and radon's ``ComplexityVisitor``.
Functions are matched by qualified name and line: radon lists top-level functions, classes with
their methods and inner classes, and functions nested in functions as ``closures``; functions it
never reports (those in classes defined inside functions) are counted apart. The script prints
the totals, the equal share, the timings and every difference with a reason category.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from radon.visitors import Class, ComplexityVisitor, Function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from codeintel.analysis.metrics import compute_function_metrics

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, slots=True)
class Difference:
    """One function whose cyclomatic complexity differs from radon's."""

    path: str
    line: int
    qualname: str
    ours: int | None
    radon: int | None
    reason: str


def iter_functions(tree: ast.Module) -> Iterator[tuple[str, FunctionNode]]:
    """Yield (qualified name, node) for every function and method of a module."""
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                qualname = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    yield qualname, child
                stack.append((child, qualname + "."))
            elif isinstance(child, ast.stmt | ast.excepthandler | ast.match_case):
                stack.append((child, prefix))


def radon_functions(tree: ast.Module) -> dict[tuple[str, int], int]:
    """Map (qualified name, line) to radon's complexity for every function radon reports."""
    visitor = ComplexityVisitor.from_ast(tree)
    found: dict[tuple[str, int], int] = {}
    pending: list[tuple[Function | Class, str]] = [(f, "") for f in visitor.functions]
    pending += [(c, "") for c in visitor.classes]
    while pending:
        block, prefix = pending.pop()
        qualname = f"{prefix}{block.name}"
        if isinstance(block, Function):
            found[(qualname, block.lineno)] = block.complexity
            pending += [(f, qualname + ".") for f in block.closures]
        else:
            pending += [(m, qualname + ".") for m in block.methods]
            pending += [(c, qualname + ".") for c in block.inner_classes]
    return found


def _own_cc(node: ast.AST, lines: list[str]) -> int:
    """Our complexity contribution of one statement or expression."""
    stmt = node if isinstance(node, ast.stmt) else ast.Expr(value=node)  # type: ignore[arg-type]
    wrapper = ast.FunctionDef(
        name="_",
        args=ast.arguments([], [], None, [], [], None, []),
        body=[stmt],
        decorator_list=[],
        lineno=1,
        end_lineno=1,
        col_offset=0,
    )
    return compute_function_metrics(wrapper, lines).cyclomatic - 1


def _radon_cc(node: ast.AST) -> int:
    """Radon's complexity contribution of one statement or expression."""
    visitor = ComplexityVisitor(off=False)
    visitor.visit(node)
    return int(visitor.complexity)


def _subtrees(node: ast.AST) -> Iterator[ast.AST]:
    """Child statements and expressions, looking through handlers, cases and the like."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt | ast.expr):
            yield child
        else:
            yield from _subtrees(child)


def reason_for(node: FunctionNode | None, lines: list[str]) -> str:
    """Name the kind of the smallest statement or expression whose complexity differs."""
    if node is None:
        return "missing_in_ours"
    culprit: ast.AST | None = None
    candidates: list[ast.AST] = list(node.body)
    while candidates:
        differing = [c for c in candidates if _own_cc(c, lines) != _radon_cc(c)]
        if not differing:
            break
        culprit = differing[0]
        candidates = list(_subtrees(culprit))
    return "unlocated" if culprit is None else type(culprit).__name__


def compare(repo: Path) -> dict[str, object]:
    """Run both analyses over ``repo`` and return totals, timings and differences."""
    paths = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "*.py"], check=True, capture_output=True, text=True
    ).stdout.split()
    totals: Counter[str] = Counter()
    timings: dict[str, float] = dict.fromkeys(("parse_s", "ours_s", "radon_s"), 0.0)
    diffs: list[Difference] = []
    for path in sorted(paths):
        source = (repo / path).read_bytes()
        start = time.perf_counter()
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError):
            totals["files_unparsable"] += 1
            continue
        timings["parse_s"] += time.perf_counter() - start
        totals["files"] += 1
        lines = source.decode("utf-8", "replace").splitlines()
        functions = list(iter_functions(tree))
        start = time.perf_counter()
        ours = {
            (qualname, node.lineno): (node, compute_function_metrics(node, lines).cyclomatic)
            for qualname, node in functions
        }
        timings["ours_s"] += time.perf_counter() - start
        start = time.perf_counter()
        theirs = radon_functions(tree)
        timings["radon_s"] += time.perf_counter() - start
        totals["functions_ours"] += len(ours)
        totals["not_reported_by_radon"] += len(ours.keys() - theirs.keys())
        for key in sorted(theirs):
            node, value = ours.get(key, (None, None))
            totals["compared"] += 1
            if value == theirs[key]:
                totals["equal"] += 1
            else:
                diffs.append(
                    Difference(path, key[1], key[0], value, theirs[key], reason_for(node, lines))
                )
    return {
        "repo": str(repo),
        "totals": dict(sorted(totals.items())),
        "timings": {k: round(v, 3) for k, v in sorted(timings.items())},
        "equal_share": totals["equal"] / totals["compared"] if totals["compared"] else 1.0,
        "differences": [asdict(d) for d in diffs],
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, compare, print the report and optionally write it as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--json", type=Path, dest="json_out")
    args = parser.parse_args(argv)
    report = compare(args.repo)
    totals: dict[str, int] = report["totals"]  # type: ignore[assignment]
    timings: dict[str, float] = report["timings"]  # type: ignore[assignment]
    differences: list[dict[str, object]] = report["differences"]  # type: ignore[assignment]
    print(f"repo: {report['repo']}")
    for key, value in [*totals.items(), *timings.items()]:
        print(f"  {key}: {value}")
    print(f"  equal_share: {report['equal_share']:.4%}")
    reasons = Counter(str(d["reason"]) for d in differences)
    print(f"differences: {len(differences)} {dict(sorted(reasons.items()))}")
    for d in differences:
        print(
            f"  {d['path']}:{d['line']} {d['qualname']} "
            f"ours={d['ours']} radon={d['radon']} [{d['reason']}]"
        )
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
