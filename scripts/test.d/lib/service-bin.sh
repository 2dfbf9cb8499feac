# Sourced by the stages that run the service: sets `bin` to the binary under test. That is
# USER_SERVICE_BIN when set (scripts/test builds the release binary once and exports it;
# a local run may name the debug one), else the release binary, built here.
if [ -z "${USER_SERVICE_BIN:-}" ]; then
  echo "==> cargo build --release --locked --bin user-service" >&2
  cargo build --release --locked --bin user-service >&2
  USER_SERVICE_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/user-service
fi
bin=$(realpath "$USER_SERVICE_BIN")
[ -x "$bin" ] || { echo "$bin is not an executable" >&2; exit 1; }
