#!/usr/bin/env bash
# Regenerates the README's performance table from `divvi bench` (release build): bins
# 16, 256 and 2048 with legacy ECIES packets, and bins 16 with HPKE. PACKETS sets the
# batch size (default 100000). The table replaces what stands between the README's
# bench markers; the "vs original" column divides by the original ENPA aggregator's
# rates on the same kind of machine (issue 3); "of 2-core floor" divides intake by
# cores / floor, where the floor is one core's time per packet for the per-packet work
# alone, which `divvi bench` measures on the batch just before each intake (criterion's
# open + verify, measured minutes apart, is shown beside it for reference: a shared
# machine's speed drifts by several percent between the two).
# Each stage runs REPEAT times (default 3); the table shows the median run and, beside
# its rate, the slowest and fastest.
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${PACKETS:-100000}
repeat=${REPEAT:-3}
echo "criterion: packet opening and verifier shares (the per-packet floor)" >&2
cargo bench --quiet --bench micro -- '^(open|verify)/' > /dev/null
cargo build --release --quiet
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for run in "16 ecies" "256 ecies" "2048 ecies" "16 hpke"; do
    set -- $run
    echo "bench: $packets packets, $1 bins, $2" >&2
    ./target/release/divvi bench --packets "$packets" --bins "$1" --scheme "$2" \
        --repeat "$repeat" --output json \
        | tr -d '\n' >> "$results"
    echo >> "$results"
done
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
RESULTS="$results" MACHINE="$machine" python3 - <<'PY'
import json, os, re

def median_us(group, bench):
    path = f"target/criterion/{group}/{bench}/new/estimates.json"
    return json.load(open(path))["median"]["point_estimate"] / 1000.0

def criterion_floor_us(bins, scheme, server):
    """One packet's open + verifier share, on one core, from criterion's hot loop."""
    if server == "0":
        return median_us(f"open_{scheme}", f"bins{bins}") + median_us("verify_leader", f"bins{bins}")
    return median_us(f"open_{scheme}", "helper") + median_us("verify_helper", f"bins{bins}")
# The original aggregator's packets/s (one core used), 100,000-packet batches.
ORIGINAL = {16: {"intake": 14500, "aggregate": 8100},
            256: {"intake": 3500, "aggregate": 3000},
            2048: {"intake": 450, "aggregate": 410}}
rows = ["| bins | scheme | stage | packets/s | range | vs original | of 2-core floor | CPU | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|"]
server_rows = ["| bins | scheme | server | floor (in the run) | criterion open + verify | intake + aggregate, CPU time |",
               "|---|---|---|---|---|---|"]
packets = None
for line in open(os.environ["RESULTS"]):
    r = json.loads(line)
    packets, cores = r["packets"], r["cores"]
    per_packet, floors = {}, {}
    for s in r["stages"]:
        kind, server = s["stage"].split()
        base = ORIGINAL.get(r["bins"], {}).get(kind)
        ratio = f"{s['packets_per_second'] / base:.1f}x" if base and r["scheme"] == "ecies" else "-"
        if kind == "intake":
            floors[server] = s["floor_us"]
        of_floor = f"{s['of_floor_percent']:.0f}%" if kind == "intake" else "-"
        rss = f"{s['peak_rss_mib']:.0f} MiB" if s["peak_rss_mib"] is not None else "-"
        spread = f"{s['packets_per_second_min'] / 1000:,.1f}k–{s['packets_per_second_max'] / 1000:,.1f}k"
        rows.append(f"| {r['bins']} | {r['scheme']} | {s['stage']} | {s['packets_per_second']:,.0f} "
                    f"| {spread} | {ratio} | {of_floor} | {s['cpu_percent']:.0f}% | {rss} |")
        runs = s["runs"]
        # CPU time per packet of the stage: what the server really spends.
        cpu_us = 1e6 * s["seconds"] * s["cpu_percent"] / 100 / s["packets"]
        per_packet[server] = per_packet.get(server, 0.0) + cpu_us
    for server, spent in sorted(per_packet.items()):
        floor = floors[server]
        reference = criterion_floor_us(r["bins"], r["scheme"], server)
        server_rows.append(f"| {r['bins']} | {r['scheme']} | {server} | {floor:.0f} µs | {reference:.0f} µs "
                           f"| {spent:.0f} µs ({spent / floor:.2f}x the floor) |")
start, end = "<!-- bench:start -->", "<!-- bench:end -->"
body = (f"{start}\n_{packets:,}-packet batches on {os.environ['MACHINE']}; median of {runs} "
        f"runs per stage (range: slowest to fastest); written by `scripts/bench-readme.sh`._\n\n"
        + "\n".join(rows)
        + "\n\nPer packet, the whole server (the original spends two opens and two verifies):\n\n"
        + "\n".join(server_rows) + f"\n{end}")
text = open("README.md").read()
if start not in text:
    raise SystemExit("README.md has no bench markers")
text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: body, text, flags=re.S)
open("README.md", "w").write(text)
PY
echo "README.md performance table updated" >&2
