#!/usr/bin/env bash
# deploy/compose.yaml rehearsed without Docker (scripts/test.d/deploy/compose_rehearsal.py):
# the API, the worker and the one-shot migration run with exactly the environment, commands,
# volumes and health check Compose would give them, against real Postgres and Redis; the
# stack is used and stopped with SIGTERM. USER_SERVICE_BIN names an already built binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${TEST_DATABASE_URL:?run through scripts/test (it starts Postgres)}" "${TEST_WORK:?}" "${PG_BIN:?}"
command -v redis-server >/dev/null 2>&1 || { echo "redis-server is missing" >&2; exit 1; }
source scripts/test.d/deploy/venv.sh
source scripts/test.d/lib/service-bin.sh
t0=$SECONDS
python scripts/test.d/deploy/compose_rehearsal.py "$bin" "$TEST_WORK/compose-rehearsal"
echo "15-compose-rehearsal: $((SECONDS - t0)) s"
