"""Unified diffs to changed lines on either side."""

from __future__ import annotations

import textwrap
from pathlib import Path

from codeintel.serving.diffs import parse_unified_diff
from codeintel.serving.impact import innermost
from codeintel.serving.worktree import diff_of_ref
from tests.conftest import git, write_files

GIT_DIFF = textwrap.dedent(
    """\
    diff --git a/pkg/a.py b/pkg/a.py
    index 1111111..2222222 100644
    --- a/pkg/a.py
    +++ b/pkg/a.py
    @@ -3,6 +3,7 @@ def f():
         x = 1
    -    y = 2
    +    y = 3
         return x
    +
     def g():
         pass
    -- a removed line that looks like a header
    \\ No newline at end of file
    diff --git a/pkg/new.py b/pkg/new.py
    new file mode 100644
    index 0000000..3333333
    --- /dev/null
    +++ b/pkg/new.py
    @@ -0,0 +1,2 @@
    +def h():
    +    pass
    diff --git a/pkg/gone.py b/pkg/gone.py
    deleted file mode 100644
    index 4444444..0000000
    --- a/pkg/gone.py
    +++ /dev/null
    @@ -1,2 +0,0 @@
    -def k():
    -    pass
    diff --git a/pkg/old_name.py b/pkg/new_name.py
    similarity index 90%
    rename from pkg/old_name.py
    rename to pkg/new_name.py
    index 5555555..6666666 100644
    --- a/pkg/old_name.py
    +++ b/pkg/new_name.py
    @@ -10,2 +10,2 @@
    -a = 1
    +a = 2
     b = 3
    diff --git a/img.png b/img.png
    index 7777777..8888888 100644
    Binary files a/img.png and b/img.png differ
    """
)


def test_a_git_diff_gives_removed_and_added_lines_insertions_and_deletions() -> None:
    files = {f.path: f for f in parse_unified_diff(GIT_DIFF)}
    a = files["pkg/a.py"]
    assert (a.old_path, a.new_path, a.old_blob, a.new_blob) == ("pkg/a.py", "pkg/a.py", "1111111", "2222222")
    assert a.removed == [4, 8] and a.added == [4, 6]
    assert a.inserted_at == [(5, 6)]  # the blank line added after `return x` (old line 5)
    assert a.deleted_at == [(8, 9)]
    assert a.changed_lines("old") == ([4, 8], [(5, 6)])
    new = files["pkg/new.py"]
    assert new.old_path is None and new.added == [1, 2]
    gone = files["pkg/gone.py"]
    assert gone.new_path is None and gone.removed == [1, 2]
    renamed = files["pkg/new_name.py"]
    assert (renamed.old_path, renamed.removed, renamed.added) == ("pkg/old_name.py", [10], [10])
    assert files["img.png"].binary


def test_a_plain_diff_u_of_two_files() -> None:
    text = textwrap.dedent(
        """\
        --- a.py\t2024-01-01 00:00:00
        +++ a.py\t2024-01-02 00:00:00
        @@ -1,2 +1,2 @@
         def f():
        -    return 1
        +    return 2
        --- b.py
        +++ b.py
        @@ -5 +5,2 @@
         x = 1
        +y = 2
        """
    )
    files = parse_unified_diff(text)
    assert [(f.old_path, f.new_path, f.removed, f.added) for f in files] == [("a.py", "a.py", [2], [2]), ("b.py", "b.py", [], [6])]
    assert files[1].inserted_at == [(5, 6)]


def test_a_quoted_path_is_unquoted() -> None:
    text = 'diff --git "a/caf\\303\\251.py" "b/caf\\303\\251.py"\n--- "a/caf\\303\\251.py"\n+++ "b/caf\\303\\251.py"\n@@ -1 +1 @@\n-a\n+b\n'
    (f,) = parse_unified_diff(text)
    assert f.old_path == f.new_path == "café.py"


def test_a_change_belongs_to_the_innermost_definition_around_it() -> None:
    defs = [("cls", 1, 20), ("m1", 2, 8), ("m2", 10, 20), ("inner", 12, 14)]
    assert innermost(defs, 13, 13) == "inner"
    assert innermost(defs, 8, 10) == "cls"  # between two methods: the class
    assert innermost(defs, 5, 6) == "m1"
    assert innermost(defs, 30, 30) is None  # module level


def test_a_refs_diff_names_its_files_as_the_index_whatever_the_users_diff_config(tmp_path: Path) -> None:
    """`diff_of_ref` on a real repository whose config drops git's `a/`/`b/` prefixes (or names
    them by side): a directory named `a` must not lose its name, and from a directory below the
    top the paths are named from it (as `codeintel export repo/sub` names them)."""
    repo = tmp_path / "r"
    write_files(repo, {"a/m.py": "def f():\n    return 1\n", "sub/b/n.py": "x = 1\n"})
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    write_files(repo, {"a/m.py": "def f():\n    return 2\n", "sub/b/n.py": "x = 2\n"})
    git(repo, "commit", "-q", "-a", "-m", "two")
    for key, value in (("diff.noprefix", "true"), ("diff.mnemonicPrefix", "true")):
        git(repo, "config", key, value)
        for ref in ("HEAD", "HEAD~1..HEAD"):
            top = {(f.old_path, f.new_path) for f in parse_unified_diff(diff_of_ref(repo, ref))}
            assert top == {("a/m.py", "a/m.py"), ("sub/b/n.py", "sub/b/n.py")}, (key, ref)
            below = {(f.old_path, f.new_path) for f in parse_unified_diff(diff_of_ref(repo / "sub", ref))}
            assert below == {("b/n.py", "b/n.py")}, (key, ref)


def test_a_line_holding_a_form_feed_or_a_line_separator_is_one_line_of_the_diff(tmp_path: Path) -> None:
    """git ends a diff's line at "\\n" only: a form feed (GNU-style page breaks), "\\x85" or
    U+2028 inside a changed line must not split it (the counts would shift and the rest of the
    hunk be lost), and the same diff saved with CRLF endings reads the same."""
    repo = tmp_path / "r"
    before = "def f():\n    return 1\n\x0c\ndef g():\n    return 2\n"
    write_files(repo, {"m.py": before})
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    after = "def f():\n    return 1  # \x85 \u2028\n\x0c\n\x0c\ndef g():\n    return 3\n"
    write_files(repo, {"m.py": after})
    git(repo, "commit", "-q", "-a", "-m", "two")
    text = diff_of_ref(repo, "HEAD")
    for variant in (text, text.replace("\n", "\r\n")):
        (f,) = parse_unified_diff(variant)
        assert (f.old_path, f.new_path) == ("m.py", "m.py")
        assert f.removed == [2, 5] and f.added == [2, 3, 6]
