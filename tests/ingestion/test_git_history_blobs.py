"""The history's blob reader (`codeintel.ingestion.history.blobs`) on a real repository."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from codeintel.config import ToolsConfig
from codeintel.ingestion.history.blobs import open_blobs
from codeintel.ingestion.tools import ToolService
from tests.ingestion.test_git_history import git


def test_reading_a_whole_pack_maps_only_a_window_of_it(tmp_path: Path) -> None:
    """git maps a pack in windows up to a limit (`gitlog.PACK_WINDOWS`): reading every blob of a
    96 MB pack leaves the reader's peak RSS far below the pack's size (git's defaults map it all)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    for i in range(96):  # random bytes: no delta, no compression, the pack is as big as they are
        (repo / f"b{i:02d}.bin").write_bytes(os.urandom(1 << 20))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "blobs")
    git(repo, "repack", "-a", "-d", "-q", "--window=0")
    [pack] = (repo / ".git" / "objects" / "pack").glob("*.pack")
    assert pack.stat().st_size > 90 << 20
    blobs = [line.split()[2] for line in git(repo, "ls-tree", "-r", "HEAD").splitlines()]
    with open_blobs(ToolService(ToolsConfig()), repo) as reader:
        for blob in blobs:
            assert len(reader.read(blob) or b"") == 1 << 20
        [cat_file] = [p for p in psutil.Process().children() if "cat-file" in p.cmdline()]
        peak_kb = int(next(line for line in Path(f"/proc/{cat_file.pid}/status").read_text().splitlines() if line.startswith("VmHWM")).split()[1])
    assert peak_kb < 64 << 10, f"git cat-file peaked at {peak_kb >> 10} MB reading a {pack.stat().st_size >> 20} MB pack"
