"""`python -m flows.local`: the pipeline in pure Python, no Prefect at all.

Same flags as `codeintel export`; runs `run_pipeline` in this process.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from codeintel.cli import add_export_arguments, export_local
from codeintel.errors import CodeIntelError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.local", description="Run the CodeIntel pipeline locally.")
    add_export_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return export_local(args, mode="local")
    except CodeIntelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
