"""Whole-program phase of the call graph: a bounded Andersen-style points-to fixpoint.

All modules' constraint programs are linked into one graph of integer variables; abstract
values (functions, classes, instances, bound methods, modules, external names, builtins,
containers with per-key slots, constants) are interned to integers. A difference-propagating
worklist pushes new values along copy edges and through "hooks" (attribute loads, subscripts,
calls, iteration) that add edges as values arrive. Points-to sets are capped (`MAX_POINTS_TO`),
so the fixpoint always terminates; iteration order never depends on string hashing.
"""

from __future__ import annotations

from collections.abc import Iterable

from codeintel.analysis.callgraph.builtins_model import BuiltinsMixin
from codeintel.analysis.callgraph.model import ModuleFacts

__all__ = ["Solution", "solve"]


class Solution(BuiltinsMixin):
    """The solved graph: edges per global site id plus the tables needed to name them."""


def solve(facts: Iterable[ModuleFacts]) -> Solution:
    """Link all modules' facts and run the points-to fixpoint.

    Args:
        facts: The facts of every analysed module.

    Returns:
        The solved state with `edges` filled.
    """
    solution = Solution(facts)
    solution.run()
    return solution
