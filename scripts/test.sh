#!/usr/bin/env bash
# Every check and test of divvi, on a fresh machine: installs what the tests need
# (Python fastavro for the cross-implementation test), then formatting, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import fastavro' 2>/dev/null; then
    echo "installing fastavro (cross-implementation Avro check)"
    python3 -m pip install --quiet --disable-pip-version-check 'fastavro>=1.9,<2'
fi

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked 2>&1 | tee "$log"
# One closing line for the whole run (cargo's last block is the empty doc-test run).
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "all tests: %d passed, %d failed\n", passed, failed }' "$log"
