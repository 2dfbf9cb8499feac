#!/usr/bin/env bash
# The journey in a real browser: the example front end (examples/nextjs, production build)
# in headless Chromium against the release binary and a real OpenID provider (panva's
# oidc-provider, tests/journey/provider.mjs) standing in for Google. Drives sign-in, profile,
# theme across a reload, the 412 path, connecting Google on the provider's own pages, a
# back-end's token fetch with a service key, the refresh when due, and the revocation on
# disconnect (tests/journey/journey.mjs).
#
# Screenshots of every step: target/journey-artifacts/ (kept after the run, with the logs of
# every process when something failed). Everything listens on loopback; every process it
# starts is stopped on exit. Installs Chromium and Node with apt-get when missing, npm
# packages with `npm ci`; fails, never skips, when something cannot be had.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
started=$SECONDS

log() { printf '[60-journey %3ds] %s\n' $((SECONDS - started)) "$*"; }
fail() { echo "60-journey: $*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} with apt-get"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x /usr/bin/chromium ] || fail "chromium is missing and could not be installed"
command -v node >/dev/null 2>&1 || fail "node is missing and could not be installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node $(node --version) is too old: Next.js 16 needs 20.9 or later"

source scripts/test.d/lib/service-bin.sh

for dir in clients/typescript examples/nextjs tests/journey; do
  log "npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

# --- processes -----------------------------------------------------------------------------
art=$root/target/journey-artifacts
rm -rf "$art" && mkdir -p "$art"
work=${TEST_WORK:-$(mktemp -d)}/journey
rm -rf "$work" && mkdir -p "$work"
pids=()
cleanup() {
  status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  cp "$work"/*.log "$art"/ 2>/dev/null || true
  if [ $status -ne 0 ]; then
    for f in "$work"/*.log; do echo "--- $(basename "$f") (last lines) ---"; tail -n 25 "$f"; done
    echo "60-journey: FAILED; screenshots and logs in $art"
  fi
  exit $status
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() { # url what pid
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || fail "$2 exited before answering (log in $art)"
    sleep 0.2
  done
  fail "$2 did not answer $1 within 60 s"
}

svc_port=$(free_port) idp_port=$(free_port) web_port=$(free_port)
web=http://127.0.0.1:$web_port
idp=http://127.0.0.1:$idp_port
svc=http://127.0.0.1:$svc_port
callback=$web/integrations/google/callback
client_secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')

log "oidc-provider on $idp"
(cd tests/journey && PORT=$idp_port CLIENT_ID=journey-google CLIENT_SECRET=$client_secret \
  REDIRECT_URIS=$callback ACCESS_TOKEN_TTL=120 exec node provider.mjs) >"$work/provider.log" 2>&1 &
pids+=($!)
wait_http "$idp/.well-known/openid-configuration" oidc-provider "${pids[-1]}"

# The service's configuration, shared by `serve` and the CLI commands below.
export ENVIRONMENT=development LISTEN_ADDR=127.0.0.1:$svc_port DATA_DIR=$work/data \
  DATABASE_URL=sqlite://$work/user-service.db CORS_ALLOWED_ORIGINS=$web \
  OAUTH_REDIRECT_URI=$callback OAUTH_ALLOWED_REDIRECT_URIS=$callback \
  OAUTH_GOOGLE_CLIENT_ID=journey-google OAUTH_GOOGLE_CLIENT_SECRET=$client_secret \
  OAUTH_GOOGLE_AUTHORIZE_URL=$idp/auth OAUTH_GOOGLE_TOKEN_URL=$idp/token \
  OAUTH_GOOGLE_REVOKE_URL=$idp/token/revocation OAUTH_GOOGLE_USERINFO_URL=$idp/me \
  CLERK_WEBHOOK_SECRET=whsec_$(head -c 32 /dev/urandom | base64) JOBS_WORKER=false RUST_LOG=${RUST_LOG:-info}
unset CLERK_JWKS_URL CLERK_ISSUER CLERK_SECRET_KEY

log "user-service on $svc"
"$bin" serve >"$work/user-service.log" 2>&1 &
pids+=($!)
wait_http "$svc/health" user-service "${pids[-1]}"

sub=user_journey
# The user as Clerk's user.created webhook makes it after a sign-up.
(cd tests/journey && node clerk-webhook.mjs "$svc" "$sub" "$sub@example.com")
session_token=$("$bin" dev token --sub "$sub")
# The CLI's log lines share stdout with the key it prints: take the key's line.
service_key=$("$bin" service-key create --name journey-backend --permissions tokens:read 2>/dev/null | grep '^usk_' | tail -n 1)
[ -n "$service_key" ] || fail "user-service service-key create printed no key"

# Next.js would otherwise report telemetry over the network.
export NEXT_TELEMETRY_DISABLED=1
log "next build (examples/nextjs)"
(cd examples/nextjs && npx next build) >"$work/next-build.log" 2>&1 || fail "next build failed: $(tail -n 30 "$work/next-build.log")"
log "next start on $web"
(cd examples/nextjs && USER_SERVICE_URL=$svc exec npx next start -H 127.0.0.1 -p "$web_port") >"$work/next.log" 2>&1 &
pids+=($!)
wait_http "$web/sign-in" "next start" "${pids[-1]}"

log "journey in Chromium (screenshots in $art)"
(cd tests/journey && WEB_URL=$web SERVICE_URL=$svc PROVIDER_URL=$idp SESSION_TOKEN=$session_token \
  CLERK_SUB=$sub SERVICE_KEY=$service_key ARTIFACTS=$art CHROMIUM=/usr/bin/chromium node journey.mjs)
log "passed in $((SECONDS - started)) s"
