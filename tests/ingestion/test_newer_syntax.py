"""`needed_python`: syntax of a newer Python told apart from real syntax errors.

Each case is checked as if CodeIntel ran under Python 3.11 and under 3.13 (`running=`), whatever
interpreter runs the tests.  The SyntaxError comes from compiling the text with the running
interpreter when that fails; where it compiles (newer syntax under a newer interpreter), or for
the cases told by message, it is built the way 3.11 reports it.
"""

from __future__ import annotations

import sys

import pytest

from codeintel.ingestion.newer_syntax import needed_python

PY311 = (3, 11)
PY313 = (3, 13)


def syntax_error(text: str, message: str = "invalid syntax") -> SyntaxError:
    """The running interpreter's SyntaxError for `text`, or one with `message` if it compiles."""
    try:
        compile(text, "<case>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return exc
    first = text.splitlines()[0] if text else ""
    return SyntaxError(message, ("<case>", 1, 1, first))


# id, source, needed under 3.11, needed under 3.13
BLANKED = [
    ("type_statement", "type Pair = tuple[int, int]\n", "3.12", None),
    ("generic_type_statement", "type Rows[T] = list[tuple[T, T]]\n", "3.12", None),
    ("type_statement_after_code", "import os\n\nif os:\n    type Path = str\n", "3.12", None),
    ("generic_def", "def first[T](xs: list[T]) -> T:\n    return xs[0]\n", "3.12", None),
    (
        "generic_async_def_bounded",
        "async def first[T: (int, str)](xs: list[T]) -> T:\n    return xs[0]\n",
        "3.12",
        None,
    ),
    ("generic_class", "class Box[T]:\n    item: T\n", "3.12", None),
    ("generic_method", "class Box:\n    def get[T](self, x: T) -> T:\n        return x\n", "3.12", None),
    (
        "generic_params_over_lines_with_comments",
        "def pair[\n    K,  # the key\n    V,\n](k: K, v: V) -> tuple[K, V]:\n    return k, v\n",
        "3.12",
        None,
    ),
    ("variadic_generics", "class Shape[*Ts, **P]:\n    pass\n", "3.12", None),
    ("pep696_default_on_def", "def first[T = int](xs: list[T]) -> T:\n    return xs[0]\n", "3.13", None),
    ("pep696_default_on_class", "class Box[T = int]:\n    item: T\n", "3.13", None),
    ("pep696_default_on_type", "type Rows[T = int] = list[T]\n", "3.13", None),
    ("pep696_default_beside_pep695", "type A = int\n\n\nclass Box[K, V = str]:\n    pass\n", "3.13", None),
    ("t_string", 'greeting = t"hello {name}"\n', "3.14", "3.14"),
    ("raw_t_string_rt", "pattern = rt'\\d+{x}'\n", "3.14", "3.14"),
    ("raw_t_string_tr_upper", 'pattern = TR"""\\w{x}"""\n', "3.14", "3.14"),
    ("t_string_beside_a_generic_def", 'def f[T](x: T) -> T:\n    return t"{x}"\n', "3.14", "3.14"),
    # lines as Python counts them: these break a line for str.splitlines, not for the tokenizer
    (
        "generic_def_after_a_line_separator",
        'S = "a\u2028b\x0cc\x85"\ndef first[T](x: T) -> T:\n    return x\n',
        "3.12",
        None,
    ),
    ("type_statement_with_cr_line_breaks", "import os\rtype Path = str\r", "3.12", None),
    ("type_statement_with_crlf_line_breaks", "import os\r\ntype Path = str\r\n", "3.12", None),
    # what is left once blanked may hold newer syntax only a message tells: the newest counts
    # (under 3.11, a PEP 701 f-string after type parameters; under 3.13 too, PEP 758 after a t-string)
    ("generic_def_beside_a_pep701_f_string", "def f[T](x: T) -> T:\n    return x\n\ny = f'{f'{1}'}'\n", "3.12", None),
    (
        "t_string_beside_a_pep758_except",
        'x = t"{y}"\ntry:\n    pass\nexcept ValueError, TypeError:\n    pass\n',
        "3.14",
        "3.14",
    ),
]


@pytest.mark.parametrize("running", [PY311, PY313], ids=["running_3.11", "running_3.13"])
@pytest.mark.parametrize(("source", "at_311", "at_313"), [c[1:] for c in BLANKED], ids=[c[0] for c in BLANKED])
def test_constructs_of_a_newer_python_name_the_version_they_need(
    source: str, at_311: str | None, at_313: str | None, running: tuple[int, int]
) -> None:
    expected = at_311 if running == PY311 else at_313
    assert needed_python(source, syntax_error(source), running=running) == expected


# id, source, the message Python 3.11 gives, needed under 3.11, needed under 3.13
BY_MESSAGE = [
    ("pep701_quotes_reused_in_a_nested_f_string", "x = f'{f'{1}'}'\n", "f-string: expecting '}'", "3.12", None),
    ("pep701_quotes_reused_in_a_subscript", 'x = f"{d["a"]}"\n', "f-string: unmatched '['", "3.12", None),
    (
        "pep701_backslash_in_an_expression",
        "x = f\"{'\\n'.join(xs)}\"\n",
        "f-string expression part cannot include a backslash",
        "3.12",
        None,
    ),
    (
        "pep758_unparenthesised_except",
        "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n",
        "multiple exception types must be parenthesized",
        "3.14",
        "3.14",
    ),
    (
        "pep758_unparenthesised_except_star",
        "try:\n    pass\nexcept* ValueError, TypeError:\n    pass\n",
        "multiple exception types must be parenthesized",
        "3.14",
        "3.14",
    ),
]


@pytest.mark.parametrize("running", [PY311, PY313], ids=["running_3.11", "running_3.13"])
@pytest.mark.parametrize(
    ("source", "message", "at_311", "at_313"), [c[1:] for c in BY_MESSAGE], ids=[c[0] for c in BY_MESSAGE]
)
def test_errors_only_a_newer_grammar_accepts_are_told_by_their_message(
    source: str, message: str, at_311: str | None, at_313: str | None, running: tuple[int, int]
) -> None:
    error = SyntaxError(message, (None, 1, 1, source.splitlines()[0]))
    expected = at_311 if running == PY311 else at_313
    assert needed_python(source, error, running=running) == expected


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the messages are those of Python 3.11")
@pytest.mark.parametrize(("source", "message"), [c[1:3] for c in BY_MESSAGE], ids=[c[0] for c in BY_MESSAGE])
def test_the_messages_are_the_ones_python_311_gives(source: str, message: str) -> None:
    assert syntax_error(source).msg == message


# id, source: real syntax errors (under every Python), never taken for newer syntax
REAL_ERRORS = [
    ("plain_error", "x = = 1\n"),
    ("broken_generic_def", "def f[T](:\n    pass\n"),
    ("generic_def_beside_a_real_error", "def first[T](xs: list[T]) -> T:\n    return xs[0]\n\n\nx = = 1\n"),
    ("type_statement_beside_a_real_error", "type Pair = tuple[int, int]\nprint(Pair\n"),
    ("t_string_beside_a_real_error", 'x = t"{y}"\ndef (:\n'),
    ("unclosed_type_parameters", "def first[T(xs):\n    return xs\n"),
    ("type_without_a_value", "type Pair\n"),
    # `type` is a soft keyword: as a name (valid on every Python) it is no type statement
    ("type_as_a_name_beside_a_real_error", "type = 5\nprint(type)\ntype(x)\nx = = 1\n"),
    ("t_and_a_string_apart", 'x = t "{y}"\n'),
    ("not_a_t_prefix", 'x = at"{y}"\n'),
    ("generic_def_inside_a_string", 'SRC = "def f[T](x): pass"\nx = = 1\n'),
    ("unterminated_string_beside_a_generic_def", 'def f[T](x):\n    return """\n'),
    ("empty_f_string_expression", 'x = f"{}"\n'),
    ("except_list_without_a_body", "try:\n    pass\nexcept ValueError, TypeError\n"),
]


@pytest.mark.parametrize("running", [PY311, PY313], ids=["running_3.11", "running_3.13"])
@pytest.mark.parametrize("source", [c[1] for c in REAL_ERRORS], ids=[c[0] for c in REAL_ERRORS])
def test_real_syntax_errors_are_not_called_newer_syntax(source: str, running: tuple[int, int]) -> None:
    with pytest.raises(SyntaxError) as caught:  # a real error for this interpreter too
        compile(source, "<case>", "exec", dont_inherit=True)
    assert needed_python(source, caught.value, running=running) is None


def test_without_running_it_is_the_interpreter_that_runs() -> None:
    source = "def first[T](xs: list[T]) -> T:\n    return xs[0]\n"
    expected = None if sys.version_info >= (3, 12) else "3.12"
    assert needed_python(source, syntax_error(source)) == expected
