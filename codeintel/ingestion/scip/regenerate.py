"""Regenerate `scip_pb2.py` / `scip_pb2.pyi` from `scip.proto` (SCIP's schema, Apache-2.0: LICENSE.scip).

No package ships SCIP bindings for Python, so the module is generated with grpcio-tools (a dev
dependency) and committed: CodeIntel itself needs only `protobuf`.  Run after updating
`scip.proto`:

    python -m codeintel.ingestion.scip.regenerate [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = HERE / "scip.proto"


def regenerate(out_dir: Path = HERE, proto: Path = PROTO) -> list[Path]:
    """Write `scip_pb2.py` and `scip_pb2.pyi` for `proto` into `out_dir`; return their paths.

    Raises:
        ModuleNotFoundError: grpcio-tools is not installed (`pip install -e ".[dev]"`).
        RuntimeError: protoc failed.
    """
    from grpc_tools import protoc  # a dev dependency: only this script needs it

    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{proto.parent}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", proto.name]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {proto}")
    return [out_dir / "scip_pb2.py", out_dir / "scip_pb2.pyi"]


if __name__ == "__main__":
    for path in regenerate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
