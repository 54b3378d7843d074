"""`codeintel callgraph DIR`: the call graph of any directory, through the real pipeline.

Runs the steps the call graph needs (scan, parse, ids, imports, call graph) on a throw-away
database, then renders `graph.call_edges` as PyCG's JSON, as JSON rows, or as Graphviz dot.
Module names are relative to DIR (`main.py` -> `main`, `pkg/__init__.py` -> `pkg`).
"""

from __future__ import annotations

import json
from pathlib import Path

from codeintel.analysis.callgraph import CallKind, CallSite, Resolution, facts_from_json, to_pycg
from codeintel.config import load_config
from codeintel.orchestration.context import PipelineContext, PipelineContextConfig
from codeintel.orchestration.steps import run_pipeline
from codeintel.storage.catalog import Table

_SITE_COLUMNS = "caller, caller_module, path, line, col, callee, callee_text, kind, resolution, confidence"


def callgraph_of_directory(directory: Path, db: Path, fmt: str) -> str:
    """Index `directory` into `db` up to the call graph and render it in `fmt` (pycg|json|dot)."""
    loaded = load_config(directory, cli={"db": db, "repo_name": directory.resolve().name})
    with PipelineContext(PipelineContextConfig.from_loaded(loaded, mode="callgraph")) as ctx:
        run_pipeline(ctx, ["call_graph"], publish=False)
        rows = ctx.gateway.query(f"SELECT {_SITE_COLUMNS} FROM {Table.CALL_EDGES} ORDER BY path, line, col, callee")
        if fmt == "json":
            return json.dumps(rows.to_pylist(), indent=1)
        if fmt == "dot":
            return render_dot(rows.to_pylist())
        facts = [
            facts_from_json(t)
            for t in ctx.gateway.query(f"SELECT facts FROM {Table.CALL_FACTS} ORDER BY path")["facts"].to_pylist()
        ]
    sites = [
        CallSite(**{**r, "kind": CallKind(r["kind"]), "resolution": Resolution(r["resolution"])})
        for r in rows.to_pylist()
    ]
    return json.dumps(to_pycg(sites, facts), indent=4)


def render_dot(rows: list[dict[str, object]]) -> str:
    """Resolved edges as a Graphviz digraph (one edge per caller/callee pair)."""
    pairs = sorted({(str(r["caller"]), str(r["callee"])) for r in rows if r["callee"] is not None})
    lines = ["digraph callgraph {", "  rankdir=LR;"]
    lines += [f"  {json.dumps(a)} -> {json.dumps(b)};" for a, b in pairs]
    lines.append("}")
    return "\n".join(lines)
