"""Static call graph of Python code: a PyCG-style points-to analysis in two phases.

`extract_call_facts` runs once per file (facts round-trip through JSON with `facts_to_json` /
`facts_from_json`); `solve_call_graph` links all files' facts and returns `CallSite` rows;
`to_pycg` renders rows in PyCG's format; `build_call_graph` does all of it for in-memory files.
"""

from __future__ import annotations

from codeintel.analysis.callgraph.facts import extract_call_facts
from codeintel.analysis.callgraph.model import (
    CallKind,
    CallSite,
    ModuleFacts,
    Resolution,
    facts_from_json,
    facts_to_json,
)
from codeintel.analysis.callgraph.pycg import build_call_graph, solve_call_graph, to_pycg

__all__ = [
    "CallKind",
    "CallSite",
    "ModuleFacts",
    "Resolution",
    "build_call_graph",
    "extract_call_facts",
    "facts_from_json",
    "facts_to_json",
    "solve_call_graph",
    "to_pycg",
]
