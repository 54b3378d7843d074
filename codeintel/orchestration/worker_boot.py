"""Imported first by the forkserver of the per-file process pool (see `executors`).

The forkserver preloads the parent's main module (`flows.local`, `flows.prefect_flow`) so that
workers fork with it imported; multiprocessing then re-runs that module by name in each worker
as `__mp_main__`, and runpy warns that it is already in `sys.modules`. That is expected here,
so the warning is silenced in the forkserver, and thereby in every worker it forks.

Workers also take Arrow's memory from the system allocator (malloc) rather than Arrow's default
(mimalloc): they build many small tables and live for one step's per-file work, and there malloc
was measured cheaper (sqlalchemy's cst_ingest extraction in one process: 6.2-6.3 s of CPU with
mimalloc, 5.8-6.0 s with malloc).

The tree-sitter parser and cst_ingest's query (0.02 s to compile) are made here once, not in
each worker's first batch.
"""

from __future__ import annotations

import warnings

import pyarrow as pa

from codeintel.ingestion.cst.extract import cst_query
from codeintel.ingestion.cst.parser import python_parser

warnings.filterwarnings("ignore", message=r".*found in sys\.modules after import of package", category=RuntimeWarning)
pa.set_memory_pool(pa.system_memory_pool())
cst_query()
python_parser()
