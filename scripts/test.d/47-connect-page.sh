#!/usr/bin/env bash
# The hosted connect page in a real headless Chromium (docs/connect-page.md): an opener on
# the configured front-end origin opens a fresh connect URL in a pop-up, which goes through a
# fake OAuth provider and the service's own callback, tells the opener "connected" by
# postMessage and closes; no CSP violation (tests/journey/connect-page.mjs). Then the
# integration is active. Installs Chromium and Node with apt-get, playwright-core with
# `npm ci` (never downloading browsers); fails, never skips.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "chromium is missing and could not be installed" >&2; exit 1; }
[ -d tests/journey/node_modules/playwright-core ] ||
  (cd tests/journey && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)

source scripts/test.d/lib/service-bin.sh
work=$(mktemp -d "${TEST_WORK:-/tmp}/connect-page.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
svc_port=$(free_port) idp_port=$(free_port) web_port=$(free_port)
svc=http://127.0.0.1:$svc_port idp=http://127.0.0.1:$idp_port
export DATA_DIR="$work/data" DATABASE_URL="sqlite://$work/connect.db" JOBS_WORKER=false RUST_LOG=warn \
  LISTEN_ADDR="127.0.0.1:$svc_port" PUBLIC_URL="$svc" CONNECT_ORIGIN="http://127.0.0.1:$web_port" \
  OAUTH_GOOGLE_CLIENT_ID=browser-client OAUTH_GOOGLE_CLIENT_SECRET=browser-client-secret \
  OAUTH_GOOGLE_AUTHORIZE_URL="$idp/authorize" OAUTH_GOOGLE_TOKEN_URL="$idp/token" \
  OAUTH_GOOGLE_USERINFO_URL="$idp/userinfo" OAUTH_GOOGLE_REVOKE_URL="$idp/revoke"
(cd "$work" && "$bin" migrate >/dev/null && "$bin" dev user create --sub user_connect --email ada@example.com >/dev/null)
token=$(cd "$work" && "$bin" dev token --sub user_connect)
(cd "$work" && exec "$bin" serve >"$work/serve.log" 2>&1) &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 150); do curl -sf "$svc/ready" >/dev/null && break; sleep 0.2; done
curl -sf "$svc/ready" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

url=$(curl -sf -X POST "$svc/users/me/connect-sessions" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"provider":"google"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
SVC=$svc WEB_PORT=$web_port IDP_PORT=$idp_port CONNECT_URL=$url node tests/journey/connect-page.mjs || {
  tail -n 30 "$work/serve.log" >&2; exit 1; }

status=$(curl -sf "$svc/users/me/integrations" -H "authorization: Bearer $token" |
  python3 -c 'import json,sys; print([i["status"] for i in json.load(sys.stdin)["items"] if i["provider"]=="google"])')
[ "$status" = "['active']" ] || { echo "google is $status after the pop-up, not active" >&2; exit 1; }
echo "47-connect-page: connected in a real browser"
