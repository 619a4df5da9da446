#!/usr/bin/env bash
# Regenerates the README's performance table from `divvi bench` (release build): bins
# 16, 256 and 2048 with legacy ECIES packets, and bins 16 with HPKE. PACKETS sets the
# batch size (default 100000). The table replaces what stands between the README's
# bench markers; the "vs original" column divides by the original ENPA aggregator's
# rates on the same kind of machine (issue 3).
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${PACKETS:-100000}
cargo build --release --quiet
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for run in "16 ecies" "256 ecies" "2048 ecies" "16 hpke"; do
    set -- $run
    echo "bench: $packets packets, $1 bins, $2" >&2
    ./target/release/divvi bench --packets "$packets" --bins "$1" --scheme "$2" --output json \
        | tr -d '\n' >> "$results"
    echo >> "$results"
done
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
RESULTS="$results" MACHINE="$machine" python3 - <<'PY'
import json, os, re
# The original aggregator's packets/s (one core used), 100,000-packet batches.
ORIGINAL = {16: {"intake": 14500, "aggregate": 8100},
            256: {"intake": 3500, "aggregate": 3000},
            2048: {"intake": 450, "aggregate": 410}}
rows = ["| bins | scheme | stage | packets/s | vs original | CPU | peak RSS |",
        "|---|---|---|---|---|---|---|"]
packets = None
for line in open(os.environ["RESULTS"]):
    r = json.loads(line)
    packets = r["packets"]
    for s in r["stages"]:
        kind = s["stage"].split()[0]
        base = ORIGINAL.get(r["bins"], {}).get(kind)
        ratio = f"{s['packets_per_second'] / base:.1f}x" if base and r["scheme"] == "ecies" else "-"
        rss = f"{s['peak_rss_mib']:.0f} MiB" if s["peak_rss_mib"] is not None else "-"
        rows.append(f"| {r['bins']} | {r['scheme']} | {s['stage']} | {s['packets_per_second']:,.0f} "
                    f"| {ratio} | {s['cpu_percent']:.0f}% | {rss} |")
start, end = "<!-- bench:start -->", "<!-- bench:end -->"
body = (f"{start}\n_{packets:,}-packet batches on {os.environ['MACHINE']}; "
        f"written by `scripts/bench-readme.sh`._\n\n" + "\n".join(rows) + f"\n{end}")
text = open("README.md").read()
if start not in text:
    raise SystemExit("README.md has no bench markers")
text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: body, text, flags=re.S)
open("README.md", "w").write(text)
PY
echo "README.md performance table updated" >&2
