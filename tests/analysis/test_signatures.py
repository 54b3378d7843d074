"""The return type read from the type checker's hover signature, brackets counted."""

from __future__ import annotations

import pytest

from codeintel.analysis.signatures import return_type


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        ("f: def f(x: int) -> str: ...", "str"),
        ("f: def f(\n    self: Self@A,\n    x: dict[str, int]\n) -> Iterable[bytes]: ...", "Iterable[bytes]"),
        ("f: def f[F: (...) -> Any](f: F) -> F: ...", "F"),  # an arrow inside the type parameters
        ("f: def f(cb: (int) -> str) -> (int) -> str: ...", "(int) -> str"),  # a callable returned
        ("f: def f(x: Literal[')']) -> None: ...", "None"),  # a bracket in a string
        ("f: def f(x: Literal['\\')']) -> int: ...", "int"),  # an escaped quote in a string
        ("route: def route(self) -> [T: (...) -> Any](T) -> T: ...", "[T: (...) -> Any](T) -> T"),
        ("f: def f(x: dict[str, (int) -> list[str]]) -> {str}: ...", "{str}"),  # brackets nested, no quote
        ("f: def f(x: [)] -> int: ...", None),  # a bracket closed by another kind
        ("f: def f(x: [)]) -> 'x': ...", None),  # the same, quotes after it
        ("x: int", None),
        ("f: def f(x", None),
        (None, None),
    ],
    ids=[
        "plain",
        "multi-line",
        "type-params",
        "callable",
        "string",
        "escaped-quote",
        "generic-callable",
        "nested",
        "mismatched",
        "mismatched-quoted",
        "no-def",
        "cut",
        "none",
    ],
)
def test_the_return_type_follows_the_parameter_list(signature: str | None, expected: str | None) -> None:
    assert return_type(signature) == expected
