"""Scratch directories of a killed process are removed by the next one that makes a directory of
the same kind; those of live processes and of other hosts are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from codeintel import scratch


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def test_making_a_scratch_directory_removes_those_of_dead_processes_only(tmp_path: Path) -> None:
    host = scratch._stem("codeintel-x-")
    dead = tmp_path / f"{host}{dead_pid()}-abc"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "index.scip").write_bytes(b"x" * 1000)
    live = tmp_path / f"{host}{os.getpid()}-def"
    live.mkdir()
    other_host = tmp_path / f"codeintel-x-elsewhere-{dead_pid()}-ghi"
    other_host.mkdir()
    other_kind = tmp_path / f"{scratch._stem('codeintel-y-')}{dead_pid()}-jkl"
    other_kind.mkdir()
    a_file = tmp_path / f"{host}{dead_pid()}-file"
    a_file.write_text("not a directory")

    made = scratch.make_dir("codeintel-x-", tmp_path)

    assert not dead.exists()
    assert live.is_dir() and other_host.is_dir() and other_kind.is_dir() and a_file.is_file()
    assert made.is_dir() and made.name.startswith(f"{host}{os.getpid()}-")
    with scratch.temporary_directory("codeintel-x-", tmp_path) as tmp:
        assert Path(tmp).name.startswith(f"{host}{os.getpid()}-")
    assert made.is_dir(), "a live process's directory stays"
