#!/usr/bin/env bash
# Deployment files, each checked with the tool made for it (issue 16):
#   Dockerfile              hadolint reports nothing
#   deploy/compose.yaml     valid against the Compose specification; every mounted file exists
#   .github/workflows/*.yml valid against the GitHub workflow schema
#   deploy/helm/user-service  linted (strict) and rendered by the Helm v4 engine with each
#                           values file in ci/; every manifest valid against the Kubernetes
#                           schemas; pods non-root, read-only root, all capabilities dropped;
#                           grace period covers the shutdown delay; rules == alerts.yml
#   docs/runbook.md         a section for every alert
#   the release binary      links only glibc (what the distroless runtime image has): no OpenSSL
# Python tools are pinned in scripts/test.d/requirements.txt. USER_SERVICE_BIN names an
# already built binary to check instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/test.d/deploy/venv.sh

step() { printf -- '--- %s\n' "$*"; }
t0=$SECONDS

step "hadolint Dockerfile"
hadolint Dockerfile

step "Compose specification: deploy/compose.yaml"
check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.yaml
python scripts/test.d/deploy/check_deploy.py compose deploy/compose.yaml
[ -f deploy/.env.example ] || { echo "deploy/.env.example is missing" >&2; exit 1; }
# Every variable compose.yaml requires (${VAR:?…}) has an example value.
for var in $(grep -o '\${[A-Z_]*:?' deploy/compose.yaml | tr -d '${:?' | sort -u); do
  grep -q "^$var=." deploy/.env.example || { echo "deploy/.env.example lacks $var" >&2; exit 1; }
done

step "GitHub workflow schema: .github/workflows"
check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
grep -qx 'exec scripts/test' .ci/run || { echo ".ci/run must call exactly scripts/test" >&2; exit 1; }

step "Helm chart: lint, render, Kubernetes schemas, pod security"
python scripts/test.d/deploy/check_deploy.py chart deploy/helm/user-service \
  deploy/helm/user-service/ci/*-values.yaml 2> >(grep -v 'found symbolic link in path' >&2)
step "docs/runbook.md has a section per alert of deploy/prometheus/alerts.yml"
for alert in $(grep -o 'alert: [A-Za-z0-9_]*' deploy/prometheus/alerts.yml | cut -d' ' -f2); do
  grep -qx "## $alert" docs/runbook.md || { echo "docs/runbook.md has no section '## $alert'" >&2; exit 1; }
done
echo "files: $((SECONDS - t0)) s"

step "release binary links only glibc"
source scripts/test.d/lib/service-bin.sh
libs=$(ldd "$bin" | awk '{print $1}')
echo "$libs"
for lib in $libs; do
  case "$lib" in
    linux-vdso.so.*|/lib64/ld-linux-*|ld-linux-*|libc.so.*|libm.so.*|libgcc_s.so.*|libpthread.so.*|libdl.so.*|librt.so.*|libutil.so.*) ;;
    *) echo "$bin links $lib: the runtime image has only glibc and libgcc (no OpenSSL)" >&2; exit 1 ;;
  esac
done
echo "10-deploy-files: $((SECONDS - t0)) s"
