#!/usr/bin/env bash
# Supply chain: licenses, banned crates and sources (crates.io only, no git dependencies)
# of everything Cargo.lock pins, checked against deny.toml. `advisories` needs the RustSec
# database from GitHub, which only the GitHub workflow can reach; it runs it there.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! cargo deny --version >/dev/null 2>&1; then
  # A one-time build from crates.io (several minutes on a small machine; see docs/security.md).
  echo "installing cargo-deny"
  cargo install cargo-deny --locked --version 0.20.2
fi
# A manifest change that was not locked fails here rather than being resolved afresh.
cargo metadata --locked --format-version 1 >/dev/null
cargo deny --locked check licenses bans sources
