#!/usr/bin/env bash
# The typed TypeScript client (clients/typescript) cannot drift from the service: its
# schema.d.ts is regenerated from the running release binary's /openapi.json and must equal
# the checked-in one, its ProblemType union must name every code of the error table, and
# it must type-check (`tsc --noEmit`). After a change to the API: `npm run generate` there.
# Installs Node with apt-get when missing and the client's packages with `npm ci`.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS
log() { printf '[50-typescript-client %3ds] %s\n' $((SECONDS - started)) "$*"; }
fail() { echo "50-typescript-client: $*" >&2; exit 1; }

if ! command -v npm >/dev/null 2>&1; then
  log "installing nodejs and npm with apt-get"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
command -v npm >/dev/null 2>&1 || fail "npm is missing and could not be installed"

source scripts/test.d/lib/service-bin.sh
log "npm ci in clients/typescript"
(cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error)

work=${TEST_WORK:-$(mktemp -d)}/client
rm -rf "$work" && mkdir -p "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ENVIRONMENT=development LISTEN_ADDR=127.0.0.1:$port DATA_DIR=$work/data \
  DATABASE_URL=sqlite://$work/db.sqlite JOBS_WORKER=false \
  "$bin" serve >"$work/user-service.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break
  kill -0 $pid 2>/dev/null || { cat "$work/user-service.log"; fail "user-service exited"; }
  sleep 0.2
done

log "schema.d.ts against the live /openapi.json"
(cd clients/typescript && OPENAPI_URL=http://127.0.0.1:$port/openapi.json node scripts/generate.mjs --check)
log "tsc --noEmit"
(cd clients/typescript && npx tsc --noEmit)
log "passed"
