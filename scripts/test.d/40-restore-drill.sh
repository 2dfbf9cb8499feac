#!/usr/bin/env bash
# The restore drill (docs/backup-restore.md), on SQLite and on Postgres, with the release
# binary: populate through the API, back up (`VACUUM INTO` / `pg_dump -Fc`) while it runs,
# restore into a fresh database, start the service on it: users, preferences and the
# integration read back, the token still decrypts with the same keyring, `audit verify`
# passes. USER_SERVICE_BIN names an already built binary instead of the release one.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${TEST_DATABASE_URL:?run through scripts/test (it starts Postgres)}" "${TEST_WORK:?}" "${PG_BIN:?}"
for tool in pg_dump pg_restore psql; do
  [ -x "$PG_BIN/$tool" ] || { echo "$PG_BIN/$tool is missing" >&2; exit 1; }
done
source scripts/test.d/lib/service-bin.sh
for engine in sqlite postgres; do
  t0=$SECONDS
  python3 scripts/test.d/deploy/restore_drill.py "$engine" "$bin" "$TEST_WORK/restore-drill-$engine"
  echo "40-restore-drill $engine: $((SECONDS - t0)) s"
done
