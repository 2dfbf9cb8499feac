#!/usr/bin/env bash
# /docs (the Swagger UI served from the binary) renders in a real headless Chromium under
# its own Content-Security-Policy, with no CSP violation: the policy allows what the UI
# needs and nothing more (docs/security.md "Browser headers and origin rule").
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v chromium >/dev/null 2>&1; then
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null
fi
command -v chromium >/dev/null 2>&1 || { echo "chromium is missing and could not be installed" >&2; exit 1; }

source scripts/test.d/lib/service-bin.sh
work=$(mktemp -d "${TEST_WORK:-/tmp}/docs-csp.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(cd "$work" && exec env DATA_DIR="$work/data" DATABASE_URL="sqlite://$work/docs.db" \
  LISTEN_ADDR="127.0.0.1:$port" JOBS_WORKER=false RUST_LOG=warn "$bin" serve >"$work/serve.log" 2>&1) &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$port/ready" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

curl -sfI "http://127.0.0.1:$port/docs/" | grep -i '^content-security-policy:' | tee "$work/csp"
grep -q "script-src 'self'" "$work/csp" || { echo "/docs has no CSP of its own" >&2; exit 1; }

# Virtual time lets the UI fetch /openapi.json and render before the DOM is dumped.
chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-dev-shm-usage --user-data-dir="$work/profile" \
  --enable-logging=stderr --v=0 --virtual-time-budget=15000 \
  --dump-dom "http://127.0.0.1:$port/docs/" >"$work/dom.html" 2>"$work/chromium.log" || {
    cat "$work/chromium.log" >&2; exit 1; }

if grep -Ei "content security policy|refused to (load|execute|apply|connect|evaluate)" "$work/chromium.log"; then
  echo "the Swagger UI hit its CSP (violations above)" >&2
  exit 1
fi
# Rendered: the operations of the document are in the DOM (the UI fetched and drew them).
for needle in 'class="swagger-ui' 'opblock' '/internal/tokens/get'; do
  grep -q -- "$needle" "$work/dom.html" || {
    echo "/docs did not render ($needle missing); chromium log:" >&2
    tail -n 40 "$work/chromium.log" >&2
    exit 1
  }
done
echo "/docs renders under its CSP with no violation"
