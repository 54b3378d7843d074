#!/usr/bin/env bash
# Create the work pool and deploy the nightly CodeIntel export of one repository.
#
#   deployments/bootstrap.sh REPO [DB]
#
# Needs PREFECT_API_URL pointing at a running Prefect server (or Prefect Cloud).  Run it from
# anywhere; it deploys from the checkout that holds it, which is where the worker runs the flow.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 REPO [DB]" >&2
  exit 2
fi
repo="$(cd "$1" && pwd)"
db="${2:-$repo/build/codeintel.duckdb}"
if [ -z "${PREFECT_API_URL:-$(prefect config view 2>/dev/null | sed -n "s/^PREFECT_API_URL='\(.*\)'.*/\1/p")}" ]; then
  echo "PREFECT_API_URL is not set: start a server (prefect server start) and run" >&2
  echo "  prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
prefect work-pool create codeintel-pool --type process --overwrite >/dev/null
prefect deploy --name nightly --no-prompt --param "repo=$repo" --param "db=$db"
echo "deployed codeintel-export/nightly for $repo -> $db"
echo "start a worker:  prefect worker start --pool codeintel-pool"
echo "run it now:      prefect deployment run codeintel-export/nightly"
