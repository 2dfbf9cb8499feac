#!/usr/bin/env bash
# Schemathesis against the running release binary, on SQLite and on Postgres: every route of
# /openapi.json, authenticated (an admin session for the user and admin routes, a service
# key holding every permission for /internal), failing on any 5xx, any answer that breaks
# its schema, and any status the document does not list (issue 14, item 7).
#
#   SCHEMATHESIS_MAX_EXAMPLES   test cases per operation and phase (default 15)
#   SCHEMATHESIS_ENGINES        "sqlite postgres" (default) or one of them
#   USER_SERVICE_BIN            a binary to test instead of building the release one (local runs)
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${TEST_WORK:?run through scripts/test (it provides TEST_WORK and TEST_DATABASE_URL)}"
: "${TEST_DATABASE_URL:?run through scripts/test}"
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-15}"
engines="${SCHEMATHESIS_ENGINES:-sqlite postgres}"
psql="${PG_BIN:+$PG_BIN/}psql"

log() { printf '\n[30-schemathesis] %s\n' "$*"; }

if ! command -v schemathesis >/dev/null 2>&1; then
  log "installing schemathesis (pip)"
  python3 -m pip install --quiet 'schemathesis>=4,<5'
fi
schemathesis --version

source scripts/test.d/lib/service-bin.sh

work="$TEST_WORK/schemathesis"
rm -rf "$work"
mkdir -p "$work"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap stop_server EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Signs a Clerk `user.created` event the Svix way and posts it: the user the tokens name.
create_user() { # base_url secret_bytes clerk_id
  python3 - "$@" <<'PY'
import base64, hashlib, hmac, json, sys, time, urllib.request
base, secret, clerk = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
body = json.dumps({"type": "user.created", "data": {
    "id": clerk, "first_name": "Łukasz", "last_name": "李小龍",
    "primary_email_address_id": "e1",
    "email_addresses": [{"id": "e1", "email_address": f"{clerk}@example.com"}]}})
msg_id, ts = f"msg_{clerk}", str(int(time.time()))
sig = base64.b64encode(hmac.new(secret, f"{msg_id}.{ts}.{body}".encode(), hashlib.sha256).digest())
req = urllib.request.Request(base + "/webhooks/clerk", data=body.encode(), method="POST", headers={
    "content-type": "application/json", "svix-id": msg_id, "svix-timestamp": ts,
    "svix-signature": "v1," + sig.decode()})
with urllib.request.urlopen(req) as res:
    assert res.status == 200, res.status
PY
}

run_engine() { # sqlite|postgres
  local engine="$1" dir="$work/$1" db_url port base secret whsec token key started
  mkdir -p "$dir/data"
  case "$engine" in
    sqlite) db_url="sqlite://$dir/data/service.db" ;;
    postgres)
      local db="schemathesis_$$"
      db_url="${TEST_DATABASE_URL%/*}/$db"
      "$psql" "$TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
      ;;
  esac
  port=$(free_port)
  base="http://127.0.0.1:$port"
  secret="schemathesis-webhook-secret-32by"
  whsec="whsec_$(printf '%s' "$secret" | base64 -w0)"
  # Development mode (local auth, a generated key under DATA_DIR), limits out of the way.
  export ENVIRONMENT=development DATABASE_URL="$db_url" LISTEN_ADDR="127.0.0.1:$port" \
    DATA_DIR="$dir/data" CLERK_WEBHOOK_SECRET="$whsec" JOBS_WORKER=false \
    RATE_LIMIT_USER_PER_MINUTE=1000000 RATE_LIMIT_SERVICE_PER_MINUTE=1000000 \
    RATE_LIMIT_ANONYMOUS_PER_MINUTE=1000000 RUST_LOG=warn
  (cd "$dir" && exec "$bin" migrate) >"$dir/migrate.log" 2>&1
  (cd "$dir" && exec "$bin" serve) >"$dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/health" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$dir/server.log"; return 1; }
    sleep 0.1
  done
  curl -fsS "$base/health" >/dev/null

  create_user "$base" "$secret" user_schemathesis
  create_user "$base" "$secret" user_schemathesisvictim
  token=$(cd "$dir" && "$bin" dev token --sub user_schemathesis --admin --ttl-seconds 3600)
  key=$(cd "$dir" && "$bin" service-key create --name schemathesis \
    --permissions tokens:read,tokens:refresh,users:read,preferences:read,integrations:read,audit:read,admin |
    grep -o 'usk_[A-Za-z0-9_-]*' | head -1)
  [ -n "$token" ] && [ -n "$key" ] || { echo "no token or key" >&2; return 1; }

  # One run: the admin session everywhere but /internal, the service key there; path
  # parameters that name things which exist, so answers other than 4xx are reached too.
  cat >"$dir/schemathesis.toml" <<EOF
[generation]
max-examples = $max_examples

[checks]
not_a_server_error.enabled = true
response_schema_conformance.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true

# Deleting the caller would leave the rest of the run without a live user (the first
# matching block wins).
[[operations]]
include-path-regex = "^/users/[{]user_ref[}]$"
include-method = "DELETE"
headers = { Authorization = "Bearer ${token}" }
parameters = { user_ref = "user_schemathesisvictim" }

[[operations]]
exclude-path-regex = "^/internal/"
headers = { Authorization = "Bearer ${token}" }
parameters = { user_ref = "me", provider = "google", name = "usage_analytics" }

[[operations]]
include-path-regex = "^/internal/"
headers = { X-API-Key = "${key}" }
parameters = { user_ref = "user_schemathesis" }
EOF
  log "schemathesis on $engine ($max_examples examples per operation)"
  started=$(date +%s)
  local rc=0
  # One worker: with two, Hypothesis parses lambdas' source in both threads at once, and
  # CPython 3.11's AST validator keeps one recursion counter for all threads, so a run now
  # and then dies of "AST constructor recursion depth mismatch" (a tool crash, no finding).
  (cd "$dir" && schemathesis --config-file "$dir/schemathesis.toml" run "$base/openapi.json" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --phases examples,coverage,fuzzing --workers 1 --request-timeout 10 --seed 14 \
    --suppress-health-check all --no-shrink) || rc=$?
  log "schemathesis on $engine took $(($(date +%s) - started)) s (exit $rc)"
  stop_server
  if [ "$rc" != 0 ]; then
    echo "server log (last 40 lines):" >&2
    tail -40 "$dir/server.log" >&2
    return "$rc"
  fi
  if [ "$engine" = postgres ]; then
    "$psql" "$TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS schemathesis_$$" >/dev/null || true
  fi
}

for engine in $engines; do
  run_engine "$engine"
done
log "schemathesis passed on: $engines"
