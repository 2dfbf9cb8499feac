#!/usr/bin/env bash
# Load with a realistic mix (tests/load): Locust, headless, at a fixed arrival rate against
# the release binary, on SQLite and on Postgres (a fresh database on TEST_DATABASE_URL):
# profile and preference reads, preference writes with If-Match, token fetches by three
# services, Clerk webhooks, and forced refreshes against a provider that answers slowly.
# Reports p50/p95/p99 per route, errors, the service's RSS and database connections over time;
# HTML report: target/load-report/index.html (and each engine's Locust report beside it).
# Fails on any failed request: any 5xx, any status the mix does not expect.
#
#   LOAD_DURATION=120 (seconds per engine)  LOAD_ENGINES=sqlite,postgres  LOAD_SOAK=1
# `scripts/load` sets these for longer runs and the 30-minute soak.
set -euo pipefail
cd "$(dirname "$0")/../.."
started=$SECONDS
log() { printf '[70-load %3ds] %s\n' $((SECONDS - started)) "$*"; }
fail() { echo "70-load: $*" >&2; exit 1; }

venv=target/load-venv
# A virtualenv holds absolute paths: one copied or moved with target/ no longer runs.
if [ -d "$venv" ] && ! "$venv/bin/pip" --version >/dev/null 2>&1; then
  log "$venv does not run here (moved?): making it again"
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  log "python3 -m venv $venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    log "installing python3-venv with apt-get"
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv" || fail "cannot create a Python virtual environment"
  fi
fi
log "pip install -r tests/load/requirements.txt"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/load/requirements.txt

source scripts/test.d/lib/service-bin.sh

engines=${LOAD_ENGINES:-sqlite,postgres}
case ",$engines," in *,postgres,*) [ -n "${TEST_DATABASE_URL:-}" ] || fail "postgres needs TEST_DATABASE_URL (run through scripts/test or scripts/load)";; esac
work=${TEST_WORK:-$(mktemp -d)}/load
rm -rf target/load-report
soak=()
[ "${LOAD_SOAK:-}" = 1 ] && soak=(--soak)
log "load: ${LOAD_DURATION:-120} s per engine on $engines"
"$venv/bin/python" tests/load/run.py --bin "$bin" --out target/load-report \
  --work "$work" --engines "$engines" --duration "${LOAD_DURATION:-120}" "${soak[@]}"
log "passed in $((SECONDS - started)) s; report: target/load-report/index.html"
