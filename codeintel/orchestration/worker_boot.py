"""Imported first by the forkserver of the per-file process pool (see `executors`).

The forkserver preloads the parent's main module (`flows.local`, `flows.prefect_flow`) so that
workers fork with it imported; multiprocessing then re-runs that module by name in each worker
as `__mp_main__`, and runpy warns that it is already in `sys.modules`. That is expected here,
so the warning is silenced in the forkserver, and thereby in every worker it forks.
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r".*found in sys\.modules after import of package", category=RuntimeWarning)
