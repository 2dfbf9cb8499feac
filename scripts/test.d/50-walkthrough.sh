#!/usr/bin/env bash
# docs/walkthrough.md, run as written: every ```sh block in order, in one bash, from the
# repository root, against the release binary; then its answers are checked. Also: every
# route of the OpenAPI document appears in docs/api.md.
#
# USER_SERVICE_BIN names an already built binary instead of the release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${TEST_WORK:?run through scripts/test}"

if ! command -v jq >/dev/null 2>&1; then
  echo "==> installing jq with apt-get"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends jq >/dev/null
fi
command -v curl >/dev/null 2>&1 || { echo "curl is missing" >&2; exit 1; }

t0=$SECONDS
work="$TEST_WORK/walkthrough"
mkdir -p "$work"
script="$work/walkthrough.sh"
python3 - docs/walkthrough.md > "$script" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)
assert blocks, "docs/walkthrough.md has no sh blocks"
print("\n".join(blocks))
PY

bin_dir=""
if [ -n "${USER_SERVICE_BIN:-}" ]; then
  bin_dir="$work/bin"; mkdir -p "$bin_dir"
  ln -sf "$(realpath "$USER_SERVICE_BIN")" "$bin_dir/user-service"
  sed -i -e 's|^cargo build --release --locked --bin user-service$|: prebuilt binary|' \
         -e "s|^export PATH=\"\$PWD/target/release:\$PATH\"\$|export PATH=\"$bin_dir:\$PATH\"|" "$script"
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export LISTEN_ADDR="127.0.0.1:$(free_port)" FAKE_PROVIDER_PORT="$(free_port)"
export DATA_DIR="$work/data" DATABASE_URL="sqlite://$work/data/user-service.db"
export CLERK_WEBHOOK_SECRET="whsec_$(head -c 24 /dev/urandom | base64)"
export RUST_LOG=warn JOBS_WORKER=false
out="$work/walkthrough.out"
# Its own process group, so nothing it started outlives a failure.
set +e
setsid timeout 600 bash -euo pipefail "$script" > "$out" 2> "$work/walkthrough.err" &
pid=$!
wait $pid
status=$?
set -e
kill -- -$pid 2>/dev/null || true
if [ $status -ne 0 ]; then
  echo "the walkthrough failed ($status):" >&2
  tail -n 30 "$out" "$work/walkthrough.err" >&2
  exit 1
fi
for expected in '"clerk_user_id": "user_123"' '"email": "ada@example.com"' '"dark"' \
                '"validation_error"' '"status": "active"' '"account_email": "ada@example.com"' \
                '"access_token": "fake-at-' '"refreshed": false' '"action": "token.accessed"'; do
  grep -qF "$expected" "$out" || { echo "the walkthrough's output lacks $expected:" >&2; cat "$out" >&2; exit 1; }
done
echo "ok   docs/walkthrough.md works as written"

# Every route the service serves is in docs/api.md.
source scripts/test.d/lib/service-bin.sh
missing=0
while read -r method path; do
  grep -qF "\`$method $path" docs/api.md || { echo "docs/api.md lacks $method $path" >&2; missing=1; }
done < <("$bin" openapi | jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | "\(ascii_upcase) \($p)"')
[ $missing = 0 ]
echo "ok   docs/api.md names every route of the OpenAPI document"
echo "50-walkthrough: $((SECONDS - t0)) s"
