"""load_config: CLI flags > CODEINTEL_* environment > [tool.codeintel] in pyproject > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeintel.config import DEFAULT_DB, ScanProfile, load_config
from codeintel.errors import ConfigError
from codeintel.orchestration.context import PipelineContextConfig


def repo_with_pyproject(tmp_path: Path, table: str | None) -> Path:
    root = tmp_path / "myrepo"
    root.mkdir()
    if table is not None:
        (root / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.codeintel]\n" + table, encoding="utf-8")
    return root


def test_defaults_apply_when_nothing_is_set(tmp_path: Path) -> None:
    loaded = load_config(repo_with_pyproject(tmp_path, None), env={})
    assert loaded.storage.db_path == DEFAULT_DB
    assert loaded.execution.executor == "process" and loaded.execution.workers == 0
    assert loaded.execution.scan == ScanProfile()
    assert loaded.snapshot.repo_name == "myrepo"
    assert loaded.snapshot.repo_root == (tmp_path / "myrepo").resolve()


PRECEDENCE_CASES = [
    ("default_alone", False, None, None, 0),
    ("pyproject_beats_default", True, None, None, 3),
    ("env_beats_pyproject", True, "5", None, 5),
    ("cli_beats_env", True, "5", 7, 7),
    ("cli_beats_pyproject", True, None, 7, 7),
    ("empty_env_is_unset", True, "", None, 3),
    ("none_cli_is_unset", True, "5", None, 5),
]


@pytest.mark.parametrize(
    ("in_pyproject", "env_value", "cli_value", "expected"),
    [c[1:] for c in PRECEDENCE_CASES],
    ids=[c[0] for c in PRECEDENCE_CASES],
)
def test_precedence_is_cli_then_env_then_pyproject_then_default(
    tmp_path: Path, in_pyproject: bool, env_value: str | None, cli_value: int | None, expected: int
) -> None:
    root = repo_with_pyproject(tmp_path, "workers = 3\n" if in_pyproject else "")
    env = {} if env_value is None else {"CODEINTEL_WORKERS": env_value}
    loaded = load_config(root, cli={"workers": cli_value}, env=env)
    assert loaded.execution.workers == expected


def test_each_source_fills_a_different_setting(tmp_path: Path) -> None:
    root = repo_with_pyproject(
        tmp_path, 'executor = "serial"\nmax-file-size = 1234\nexclude = ["gen/*"]\nrepo_name = "named"\n'
    )
    env = {"CODEINTEL_EXECUTOR": "dask", "CODEINTEL_LOCK_TIMEOUT": "2.5", "CODEINTEL_INCLUDE": "*.py, *.pyi"}
    loaded = load_config(root, cli={"db": tmp_path / "x.duckdb"}, env=env)
    assert loaded.execution.executor == "dask"
    assert loaded.execution.scan.max_file_size == 1234
    assert loaded.execution.scan.exclude == ("gen/*",)
    assert loaded.execution.scan.include == ("*.py", "*.pyi")
    assert loaded.storage.lock_timeout_s == 2.5
    assert loaded.storage.db_path == tmp_path / "x.duckdb"
    assert loaded.snapshot.repo_name == "named"


def test_the_process_environment_is_read_when_no_env_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEINTEL_WORKERS", "4")
    assert load_config(repo_with_pyproject(tmp_path, None)).execution.workers == 4


def test_an_unknown_pyproject_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    root = repo_with_pyproject(tmp_path, "max_filesize = 10\n")
    with pytest.raises(
        ConfigError, match=r"unknown setting \[tool.codeintel\] max_filesize \(did you mean 'max_file_size'\?\)"
    ) as error:
        load_config(root, env={})
    assert str(root / "pyproject.toml") in str(error.value)


BAD_VALUE_CASES = [
    ("env_not_an_int", {"CODEINTEL_WORKERS": "many"}, None, "workers"),
    ("pyproject_not_a_number", None, "lock_timeout = 'soon'\n", "lock_timeout"),
    ("unknown_executor", {"CODEINTEL_EXECUTOR": "threads"}, None, "executor 'threads'"),
    ("malformed_toml", None, "workers = = 3\n", "pyproject.toml"),
    ("negative_size", None, "max_file_size = -5\n", "max_file_size=-5 .* 0 or more"),
    ("negative_timeout", {"CODEINTEL_HISTORY_TIMEOUT": "-1"}, None, "history_timeout='-1' .* 0 or more"),
    ("zero_tool_timeout", {"CODEINTEL_GIT_TIMEOUT": "0"}, None, "git_timeout='0' .* more than 0"),
    ("zero_file_size", None, "max_file_size = 0\n", "max_file_size=0 .* size in bytes more than 0"),
    ("infinite_number", None, "history_coupling_min_degree = inf\n", "history_coupling_min_degree=inf .* finite"),
    ("nan_number", {"CODEINTEL_HISTORY_COUPLING_MIN_DEGREE": "nan"}, None, "min_degree='nan' .* finite"),
    ("bad_regex", None, 'history_bot_pattern = "(unclosed"\n', r"history_bot_pattern='\(unclosed' is not a regular"),
    ("boolean_count", None, "workers = true\n", "workers=True"),
]


@pytest.mark.parametrize(
    ("env", "table", "named"), [c[1:] for c in BAD_VALUE_CASES], ids=[c[0] for c in BAD_VALUE_CASES]
)
def test_a_bad_value_is_a_config_error_naming_the_setting(
    tmp_path: Path, env: dict[str, str] | None, table: str | None, named: str
) -> None:
    root = repo_with_pyproject(tmp_path, table)
    with pytest.raises(ConfigError, match=named):
        load_config(root, env=env or {})


def test_a_missing_repository_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        load_config(tmp_path / "absent", env={})


def test_storage_paths_derive_from_the_db_path(tmp_path: Path) -> None:
    storage = load_config(
        repo_with_pyproject(tmp_path, None), cli={"db": tmp_path / "out" / "ci.duckdb"}, env={}
    ).storage
    assert storage.work_db_path == tmp_path / "out" / "ci.work.duckdb"
    assert storage.lock_path == tmp_path / "out" / "ci.work.duckdb.lock"


def test_the_context_config_round_trips_through_json(tmp_path: Path) -> None:
    root = repo_with_pyproject(tmp_path, 'exclude = ["gen/*"]\nworkers = 2\n')
    cfg = PipelineContextConfig.from_loaded(
        load_config(root, cli={"db": tmp_path / "c.duckdb", "out_dir": tmp_path / "dump"}, env={}),
        mode="prefect",
        full=True,
    )
    assert cfg.storage.out_dir == tmp_path / "dump"
    assert PipelineContextConfig.from_json(cfg.to_json()) == cfg
