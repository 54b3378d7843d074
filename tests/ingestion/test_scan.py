"""Repository scan: import names, which files count (git and plain walks), symlinks, hashing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from codeintel.config import ScanProfile, ToolsConfig
from codeintel.ingestion.scan import (
    ChangeKind,
    PreviousState,
    ScannedFile,
    diff_states,
    hash_bytes,
    module_name,
    scan_repository,
)
from codeintel.ingestion.tools import ToolService

TOOLS = ToolService(ToolsConfig())

MODULE_CASES = [
    ("src_package_init_drops_src", "src/pkg/__init__.py", {"src/pkg"}, ("pkg", True, "src")),
    ("src_module_drops_src", "src/pkg/a.py", {"src/pkg"}, ("pkg.a", False, "src")),
    ("src_namespace_package", "src/ns/sub/mod.py", set(), ("ns.sub.mod", False, "src")),
    ("src_top_level_module", "src/top.py", set(), ("top", False, "src")),
    ("package_init_is_the_package", "pkg/__init__.py", {"pkg"}, ("pkg", True, "")),
    ("nested_package_module", "pkg/sub/b.py", {"pkg", "pkg/sub"}, ("pkg.sub.b", False, "")),
    ("package_under_a_plain_dir_starts_at_the_package", "lib/pkg/a.py", {"lib/pkg"}, ("pkg.a", False, "lib")),
    (
        "nested_package_init_under_a_plain_dir",
        "lib/pkg/sub/__init__.py",
        {"lib/pkg", "lib/pkg/sub"},
        ("pkg.sub", True, "lib"),
    ),
    (  # `sansio` has no __init__.py: a namespace package inside `flask`
        "namespace_dir_inside_a_package_under_a_plain_dir",
        "services/a/flask/sansio/app.py",
        {"services/a/flask"},
        ("flask.sansio.app", False, "services/a"),
    ),
    (
        "namespace_dirs_inside_a_package_chain",
        "lib/pkg/sub/ns/deeper/m.py",
        {"lib/pkg", "lib/pkg/sub"},
        ("pkg.sub.ns.deeper.m", False, "lib"),
    ),
    ("namespace_dir_inside_a_top_level_package", "pkg/tests/test_a.py", {"pkg"}, ("pkg.tests.test_a", False, "")),
    (  # a package inside a namespace directory starts its own chain
        "package_inside_a_namespace_dir_inside_a_package",
        "lib/pkg/vendored/other/x.py",
        {"lib/pkg", "lib/pkg/vendored/other"},
        ("other.x", False, "lib/pkg/vendored"),
    ),
    (  # each package of a monorepo with its own src/ layout; `acme` a namespace package (PEP 420)
        "nested_src_is_a_source_root",
        "packages/acme-foo/src/acme/foo/core.py",
        {"packages/acme-foo/src/acme/foo"},
        ("acme.foo.core", False, "packages/acme-foo/src"),
    ),
    ("nested_src_module", "libs/tool/src/tool.py", set(), ("tool", False, "libs/tool/src")),
    (  # a package's own subpackage named `src` is no source root
        "src_package_inside_a_package",
        "pkg/src/a.py",
        {"pkg", "pkg/src"},
        ("pkg.src.a", False, ""),
    ),
    ("src_dir_inside_a_package", "lib/pkg/src/a.py", {"lib/pkg"}, ("pkg.src.a", False, "lib")),
    ("loose_tests_file_is_named_from_the_root", "tests/test_a.py", set(), ("tests.test_a", False, "")),
    ("tests_package_under_plain_tests_dir", "tests/unit/test_b.py", {"tests/unit"}, ("unit.test_b", False, "tests")),
    ("top_level_script", "setup.py", set(), ("setup", False, "")),
]


@pytest.mark.parametrize(
    ("path", "package_dirs", "expected"), [c[1:] for c in MODULE_CASES], ids=[c[0] for c in MODULE_CASES]
)
def test_module_name(path: str, package_dirs: set[str], expected: tuple[str, bool, str]) -> None:
    assert module_name(path, package_dirs) == expected


def scan(
    root: Path, profile: ScanProfile | None = None, previous: dict[str, PreviousState] | None = None
) -> dict[str, ScannedFile]:
    return {f.path: f for f in scan_repository(root, profile or ScanProfile(), TOOLS, previous or {})}


LAYOUT = {
    "src/app/__init__.py": "",
    "src/app/core.py": "X = 1\n",
    "src/nsapp/plugin.py": "Y = 2\n",
    "lib/tool/__init__.py": "",
    "lib/tool/run.py": "Z = 3\n",
    "tests/test_core.py": "def test(): pass\n",
    "README.md": "not python\n",
}
LAYOUT_MODULES = {
    "src/app/__init__.py": "app",
    "src/app/core.py": "app.core",
    "src/nsapp/plugin.py": "nsapp.plugin",
    "lib/tool/__init__.py": "tool",
    "lib/tool/run.py": "tool.run",
    "tests/test_core.py": "tests.test_core",
}


@pytest.mark.parametrize("use_git", [True, False], ids=["git", "plain_walk"])
def test_scan_names_modules_by_their_import_names(tmp_path: Path, make_repo: Any, use_git: bool) -> None:
    repo = make_repo(tmp_path, LAYOUT, use_git=use_git)
    found = scan(repo.root)
    assert {p: f.module for p, f in found.items()} == LAYOUT_MODULES
    assert found["src/app/__init__.py"].is_package and not found["src/app/core.py"].is_package
    assert all(f.is_tracked == use_git for f in found.values())
    assert found["src/app/core.py"].hash == hash_bytes(b"X = 1\n")


def test_git_scan_includes_untracked_files_and_excludes_ignored_ones(tmp_path: Path, make_repo: Any) -> None:
    repo = make_repo(tmp_path, {"a.py": "", ".gitignore": "ignored_*.py\ngenerated/\n"})
    repo.write({"new.py": "", "ignored_x.py": "", "generated/g.py": "", ".venv/lib/site.py": "", "build/out.py": ""})
    found = scan(repo.root)
    assert sorted(found) == ["a.py", "new.py"]
    assert found["a.py"].is_tracked and not found["new.py"].is_tracked


def test_a_tracked_file_deleted_from_the_work_tree_is_not_reported(tmp_path: Path, make_repo: Any) -> None:
    repo = make_repo(tmp_path, {"a.py": "", "b.py": ""})
    (repo.root / "b.py").unlink()
    assert sorted(scan(repo.root)) == ["a.py"]


def test_plain_walk_skips_the_ignored_directories(tmp_path: Path, make_repo: Any) -> None:
    files = {
        "a.py": "",
        ".venv/x.py": "",
        "node_modules/y.py": "",
        "__pycache__/z.py": "",
        "pkg.egg-info/w.py": "",
        "sub/b.py": "",
    }
    repo = make_repo(tmp_path, files, use_git=False)
    assert sorted(scan(repo.root)) == ["a.py", "sub/b.py"]


def test_scan_profile_include_and_exclude_patterns_apply(tmp_path: Path, make_repo: Any) -> None:
    repo = make_repo(tmp_path, {"a.py": "", "b.pyi": "", "gen/c_pb2.py": "", "d.py": ""})
    profile = ScanProfile(include=("*.py", "*.pyi"), exclude=("gen/*", "d.py"))
    assert sorted(scan(repo.root, profile)) == ["a.py", "b.pyi"]


@pytest.mark.parametrize("use_git", [True, False], ids=["git", "plain_walk"])
def test_include_patterns_match_the_path_from_the_top_with_git_and_without(
    tmp_path: Path, make_repo: Any, use_git: bool
) -> None:
    """As git's pathspecs: a pattern matches the whole path (`*` crossing directories), so the
    plain walk takes what git lists; no pattern takes nothing (not every file, as git lists)."""
    files = {
        "src/a.py": "",
        "src/sub/b.py": "",
        "other/c.py": "",
        "src/notes.txt": "",
        "test_top.py": "",
        "t/test_x.py": "",
    }
    repo = make_repo(tmp_path, files, use_git=use_git)
    assert sorted(scan(repo.root, ScanProfile(include=("src/*.py",)))) == ["src/a.py", "src/sub/b.py"]
    assert sorted(scan(repo.root, ScanProfile(include=("test_*.py",)))) == ["test_top.py"]
    assert scan(repo.root, ScanProfile(include=())) == {}


# ---------------------------------------------------------------------------------- symlinks


def _with_symlinks(root: Path) -> None:
    (root / "alias.py").symlink_to("real.py")
    (root / "dangling.py").symlink_to("missing.py")
    (root / "loop").symlink_to(".", target_is_directory=True)
    (root / "linked_pkg").symlink_to("pkg", target_is_directory=True)


@pytest.mark.parametrize("use_git", [True, False], ids=["git", "plain_walk"])
def test_symlinks_are_recorded_as_skipped_and_never_followed(tmp_path: Path, make_repo: Any, use_git: bool) -> None:
    files = {"real.py": "A = 1\n", "pkg/__init__.py": "", "pkg/mod.py": "B = 2\n"}
    repo = make_repo(tmp_path, files, use_git=use_git)
    _with_symlinks(repo.root)
    if use_git:
        repo.commit("track the symlinks")
    found = scan(repo.root)
    assert not [p for p in found if p.startswith(("loop/", "linked_pkg/"))], "a symlinked directory was followed"
    for link in ("alias.py", "dangling.py"):
        assert found[link].skip_reason == "symlink" and found[link].hash is None
    assert {p for p, f in found.items() if f.skip_reason is None} == {"real.py", "pkg/__init__.py", "pkg/mod.py"}


def test_a_symlinked_directory_is_recorded_as_skipped(tmp_path: Path, make_repo: Any) -> None:
    repo = make_repo(tmp_path, {"pkg/__init__.py": ""}, use_git=False)
    (repo.root / "loop").symlink_to(".", target_is_directory=True)
    assert scan(repo.root)["loop"].skip_reason == "symlink"


def test_symlinks_reach_core_files_as_skips_and_stay_out_of_file_state(
    tmp_path: Path, make_repo: Any, make_indexer: Any
) -> None:
    repo = make_repo(tmp_path, {"real.py": "def f():\n    pass\n", "pkg/__init__.py": ""})
    _with_symlinks(repo.root)
    indexer = make_indexer(repo)
    indexer.run()
    assert dict(indexer.query("SELECT path, skip_reason FROM core.files WHERE skip_reason IS NOT NULL")) == {
        "alias.py": "symlink",
        "dangling.py": "symlink",
    }
    state = {p for (p,) in indexer.query("SELECT path FROM core.file_state")}
    assert state == {"real.py", "pkg/__init__.py"}
    modules = indexer.query("SELECT module, path, is_package, package, source_root FROM core.modules ORDER BY path")
    assert modules == [("pkg", "pkg/__init__.py", True, None, ""), ("real", "real.py", False, None, "")]


# ---------------------------------------------------------------------------------- hashing


def test_a_file_with_the_same_size_and_mtime_reuses_the_previous_hash_without_reading(
    tmp_path: Path, make_repo: Any
) -> None:
    repo = make_repo(tmp_path, {"a.py": "A = 1\n"}, use_git=False)
    st = os.stat(repo.root / "a.py")
    same = {"a.py": PreviousState("previous-hash", st.st_size, st.st_mtime_ns)}
    assert scan(repo.root, previous=same)["a.py"].hash == "previous-hash"
    touched = {"a.py": PreviousState("previous-hash", st.st_size, st.st_mtime_ns - 1)}
    assert scan(repo.root, previous=touched)["a.py"].hash == hash_bytes(b"A = 1\n")


def test_diff_states_classifies_every_path() -> None:
    previous = {
        "same.py": PreviousState("h1", 1, 1),
        "edited.py": PreviousState("h2", 1, 1),
        "gone.py": PreviousState("h3", 1, 1),
    }
    current = [
        ScannedFile("same.py", "same", False, "python", 1, 1, "h1", True, None, ""),
        ScannedFile("edited.py", "edited", False, "python", 1, 2, "h2b", True, None, ""),
        ScannedFile("new.py", "new", False, "python", 1, 1, "h4", False, None, ""),
        ScannedFile("link.py", "link", False, "python", 0, 0, None, True, "symlink", ""),
    ]
    changes = {path: (kind, old, new) for path, kind, old, new in diff_states(previous, current)}
    assert changes == {
        "same.py": (ChangeKind.UNCHANGED, "h1", "h1"),
        "edited.py": (ChangeKind.MODIFIED, "h2", "h2b"),
        "new.py": (ChangeKind.ADDED, None, "h4"),
        "gone.py": (ChangeKind.DELETED, "h3", None),
    }
