"""The `codeintel` command through `codeintel.cli.main([...])`: export, steps, status, query."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from codeintel.cli import main
from codeintel.orchestration.steps import PIPELINE_DEPS, topological_order

FILES = {
    "src/demo/__init__.py": "",
    "src/demo/calc.py": """
        def add(a, b):
            return a + b


        class Calc:
            def mul(self, a, b):
                return a * b
        """,
}


@pytest.fixture
def exported(indexed_copy: Any) -> Any:
    """A private copy of the demo repo with a published database."""
    return indexed_copy("cli-demo", FILES)


def test_export_publishes_the_database_and_prints_a_summary(
    tmp_path: Path, make_repo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, FILES)
    db = tmp_path / "out" / "ci.duckdb"
    assert main(["export", str(repo.root), "--db", str(db), "--executor", "serial"]) == 0
    out = capsys.readouterr().out
    assert db.is_file()
    assert all(step in out for step in PIPELINE_DEPS)
    assert "analytics.function_metrics: 2" in out
    assert f"published: {db}" in " ".join(out.split())
    assert (
        main(["query", "--db", str(db), "--format", "csv", "SELECT full_name FROM docs.v_function_summary ORDER BY 1"])
        == 0
    )
    assert capsys.readouterr().out.split() == ["full_name", "demo.calc.Calc.mul", "demo.calc.add"]


def test_export_quiet_prints_nothing_on_success(
    tmp_path: Path, make_repo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, FILES)
    assert (
        main(
            [
                "export",
                str(repo.root),
                "--db",
                str(tmp_path / "q.duckdb"),
                "--executor",
                "serial",
                "--quiet",
                "--select",
                "goids",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""


def test_export_with_an_unknown_step_exits_2_with_a_suggestion(
    tmp_path: Path, make_repo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, FILES)
    assert main(["export", str(repo.root), "--db", str(tmp_path / "x.duckdb"), "--select", "goid+"]) == 2
    assert "did you mean 'goids'" in capsys.readouterr().err


def test_steps_lists_every_step_with_its_deps_in_dependency_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["steps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == topological_order(PIPELINE_DEPS)
    for line in lines:
        name = line.split()[0]
        assert f"<- {', '.join(PIPELINE_DEPS[name]) or '-'} " in line


def test_status_shows_the_last_run_and_its_steps(exported: Any, capsys: pytest.CaptureFixture[str]) -> None:
    (run_id,) = exported.query("SELECT run_id FROM meta.pipeline_runs")[0]
    assert main(["status", "--db", str(exported.db)]) == 0
    out = capsys.readouterr().out
    assert run_id in out and "succeeded" in out
    assert all(f"{step}=succeeded" in out for step in PIPELINE_DEPS)
    steps = out.split("steps (what the published database holds):")[1].splitlines()
    by_step = {line.split()[0]: line.split() for line in steps[3:] if line.strip()}
    assert set(by_step) == set(PIPELINE_DEPS)
    assert all(cells[1:4] == ["succeeded", "no", run_id] for cells in by_step.values())


def test_the_summary_prints_notes_and_paths_as_text_not_markup(
    tmp_path: Path, make_repo: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A note naming `[tool.codeintel]` (git missing) and a database path with brackets are
    printed as they are: rich would take `[...]` for a style tag and drop it."""
    monkeypatch.setenv("CODEINTEL_GIT", "no-such-git")
    monkeypatch.setenv("COLUMNS", "400")  # one line per row: nothing wrapped
    repo = make_repo(tmp_path, FILES)
    db = tmp_path / "out[1]" / "ci.duckdb"
    assert main(["export", str(repo.root), "--db", str(db), "--executor", "serial", "--select", "git_history"]) == 0
    out = capsys.readouterr().out
    assert "[tool.codeintel]" in out
    assert f"published: {db}" in out
    assert "stale: goids (never succeeded); it has no output yet" in out  # not selected, never run


def test_export_summary_says_not_published_when_the_publish_failed(
    tmp_path: Path, make_repo: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from codeintel.errors import StorageError
    from codeintel.storage.gateway import StorageGateway

    def no_room(self: Any) -> Path:
        raise StorageError("no space left on device (injected)")

    monkeypatch.setattr(StorageGateway, "publish", no_room)
    repo = make_repo(tmp_path, FILES)
    db = tmp_path / "out" / "ci.duckdb"
    assert main(["export", str(repo.root), "--db", str(db), "--executor", "serial"]) == 2
    captured = capsys.readouterr()
    assert "published" not in captured.out and "no space left" in captured.err
    assert not db.exists()


SQL = "SELECT name, kind, start_line, NULL AS nothing FROM core.goids WHERE kind <> 'module' ORDER BY start_line"


def test_query_table_format_aligns_columns_under_a_rule(exported: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--db", str(exported.db), SQL]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "kind", "start_line", "nothing"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert [line.split() for line in lines[2:]] == [
        ["add", "function", "2", "NULL"],
        ["Calc", "class", "6", "NULL"],
        ["mul", "method", "7", "NULL"],
    ]


def test_query_table_format_wraps_long_values_and_never_cuts_them(
    exported: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    long = "x" * 70 + "-tail"
    assert main(["query", "--db", str(exported.db), f"SELECT 'a' AS short, '{long}' AS long_value, 'line1\nline2' AS nl"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[2].split() == ["a", "x" * 60, "line1"]
    assert lines[3].split() == ["x" * 10 + "-tail", "line2"]
    assert "wrapped" in lines[-1] and "--format csv or json" in lines[-1]


def test_query_csv_format(exported: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--db", str(exported.db), "--format", "csv", SQL]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [
        ["name", "kind", "start_line", "nothing"],
        ["add", "function", "2", ""],
        ["Calc", "class", "6", ""],
        ["mul", "method", "7", ""],
    ]


def test_query_json_format_is_one_object_per_line(exported: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--db", str(exported.db), "--format", "json", SQL]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == {"name": "add", "kind": "function", "start_line": 2, "nothing": None}
    assert [r["name"] for r in rows] == ["add", "Calc", "mul"]


def test_query_without_a_published_database_exits_2_saying_to_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "--db", str(tmp_path / "none.duckdb"), "SELECT 1"]) == 2
    assert "codeintel export" in capsys.readouterr().err


@pytest.mark.parametrize("sql", ["SELEC 1", "CREATE TABLE t (a INT)"], ids=["syntax_error", "write_on_read_only"])
def test_a_bad_query_is_a_clear_error_not_a_traceback(
    exported: Any, capsys: pytest.CaptureFixture[str], sql: str
) -> None:
    assert main(["query", "--db", str(exported.db), sql]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_a_bare_repository_or_a_git_directory_is_a_clear_error_not_an_empty_database(
    tmp_path: Path, make_repo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "def f():\n    return 1\n"})
    bare = tmp_path / "mirror.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.root), str(bare)], check=True)
    for path, what in ((bare, "bare git repository"), (repo.root / ".git", "git directory")):
        db = tmp_path / f"{path.name}.duckdb"
        assert main(["export", str(path), "--db", str(db)]) == 2
        assert f"is a {what}: it has no checked-out files" in capsys.readouterr().err
        assert not db.exists()


def test_dump_without_a_published_database_exits_2_saying_to_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["dump", str(out), "--db", str(tmp_path / "none.duckdb")]) == 2
    assert "no published database" in capsys.readouterr().err
    assert not out.exists()
