# Sourced by the stages that need the pinned Python tools (scripts/test.d/requirements.txt):
# creates (once per version of the requirements) a virtualenv under the user's cache and
# puts its bin/ first on PATH. Fails, never skips, when python3 or pip cannot provide them.
set -euo pipefail
reqs="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/requirements.txt"
command -v python3 >/dev/null 2>&1 || { echo "python3 is missing" >&2; exit 1; }
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "==> installing python3-venv with apt-get"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
hash=$( (cat "$reqs"; python3 --version) | sha256sum | cut -c1-12)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/user-service/test-venv-$hash"
if [ ! -x "$venv/bin/.complete" ]; then
  echo "==> installing the pinned Python tools into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs"
  printf '#!/bin/sh\n' > "$venv/bin/.complete" && chmod +x "$venv/bin/.complete"
fi
export PATH="$venv/bin:$PATH"
