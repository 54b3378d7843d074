"""Persisted change state: which files each step still has to (re)process.

`meta.step_file_state` holds, per step, the hash of every file the step last processed
successfully.  A per-file step processes exactly the files whose current hash differs from what
*it* last processed, and deletes the rows of files that are gone, so a step that failed, was
excluded or was not selected catches up on its next run.  Everything lives in DuckDB, so any
process can rebuild this from the database alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from codeintel.storage.catalog import Table
from codeintel.storage.gateway import StorageGateway, Writer


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file a step has to process, with the hash it is expected to have."""

    path: str
    module: str
    is_package: bool
    hash: str
    size: int


@dataclass(frozen=True, slots=True)
class StaleFiles:
    """What one step has to do: files to (re)process and files that are gone."""

    to_process: tuple[FileRef, ...]
    gone: tuple[str, ...]

    @property
    def paths_to_clear(self) -> list[str]:
        return [f.path for f in self.to_process] + list(self.gone)

    def __bool__(self) -> bool:
        return bool(self.to_process or self.gone)


@dataclass(frozen=True, slots=True)
class ChangeTracker:
    """Reads and records per-step file state in the work database."""

    gateway: StorageGateway

    def stale_files(self, step: str, source_step: str | None = None) -> StaleFiles:
        """Files `step` must process.

        Args:
            step: The step asking.
            source_step: For a step that derives its rows from another step's tables rather than
                from the files, that step: then "current" means what *it* last processed.
        """
        if source_step is None:
            current = f"SELECT path, hash FROM {Table.FILE_STATE}"
            params: list[str] = [step]
        else:
            current = f"SELECT path, hash FROM {Table.STEP_FILE_STATE} WHERE step = ?"
            params = [source_step, step]
        sql = f"""
            WITH cur AS ({current}),
                 mine AS (SELECT path, hash FROM {Table.STEP_FILE_STATE} WHERE step = ?)
            SELECT cur.path AS path, coalesce(m.module, '') AS module,
                   coalesce(m.is_package, false) AS is_package, cur.hash AS hash,
                   coalesce(fs.size, 0) AS size, mine.path AS old
            FROM cur FULL OUTER JOIN mine ON cur.path = mine.path
            LEFT JOIN {Table.MODULES} m ON m.path = cur.path
            LEFT JOIN {Table.FILE_STATE} fs ON fs.path = cur.path
            WHERE cur.hash IS DISTINCT FROM mine.hash
            ORDER BY coalesce(cur.path, mine.path)
        """
        rows = self.gateway.query(sql, params).to_pylist()
        to_process = tuple(
            FileRef(r["path"], r["module"], r["is_package"], r["hash"], r["size"])
            for r in rows
            if r["path"] is not None
        )
        gone = tuple(r["old"] for r in rows if r["path"] is None)
        return StaleFiles(to_process, gone)

    @staticmethod
    def record(
        writer: Writer, step: str, run_id: str, processed: Iterable[tuple[str, str]], gone: Iterable[str]
    ) -> None:
        """Inside the step's write transaction: remember what it processed and forget what is gone."""
        done = sorted(processed)
        writer.delete_paths(Table.STEP_FILE_STATE, [p for p, _ in done] + list(gone), f" AND step = '{_sql_str(step)}'")
        batch = pa.table(
            {
                "step": pa.array([step] * len(done), pa.string()),
                "path": pa.array([p for p, _ in done], pa.string()),
                "hash": pa.array([h for _, h in done], pa.string()),
                "run_id": pa.array([run_id] * len(done), pa.string()),
            }
        )
        writer.insert(Table.STEP_FILE_STATE, batch)

    @staticmethod
    def forget_files(writer: Writer, paths: Iterable[str]) -> None:
        """Inside a write transaction: make every step process `paths` again (their content is
        the same, what the steps made of them is not: `scan.renamed`)."""
        writer.delete_paths(Table.STEP_FILE_STATE, paths)

    @staticmethod
    def forget_step(writer: Writer, step: str) -> None:
        """Make `step` reprocess every file next time (used by --full)."""
        writer.execute(f"DELETE FROM {Table.STEP_FILE_STATE} WHERE step = ?", [step])


def _sql_str(text: str) -> str:
    return text.replace("'", "''")
