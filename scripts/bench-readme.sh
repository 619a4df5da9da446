#!/usr/bin/env bash
# Regenerates the README's performance table from `divvi bench` (release build): bins
# 16, 256 and 2048 with legacy ECIES packets, and bins 16 with HPKE. PACKETS sets the
# batch size (default 100000). The table replaces what stands between the README's
# bench markers; the "vs original" column divides by the original ENPA aggregator's
# rates on the same kind of machine (issue 3); "of 2-core floor" divides intake by
# cores / floor, where the floor is one core's time per packet for the per-packet work
# alone, timed three ways: by `divvi bench` on the batch with the other core idle, just
# before and just after each run ("alone"); the same on both cores at once, nothing else
# running ("all busy": what the two cores really reach doing only that work, less than
# twice one core here, since the cores slow each other down; the performance target is
# read against it); and inside the run itself ("in run": CPU time per packet spent in
# it), which shows how much of the cores' time went to that work whatever the machine's
# speed.
# Criterion's open + verify, measured minutes apart, is shown beside it for reference:
# a shared machine's speed drifts by several percent between the two.
# Each stage runs REPEAT times (default 3); the table shows the median run and, beside
# its rate, the slowest and fastest.
# A second table, between the DAP bench markers, does the same for DAP-18 tasks of Prio3
# histograms of 16, 256 and 2048 buckets (reports made by the client library), with
# criterion's per-report intake (open + verification start + provisional finish) and
# aggregate's decision costs beside. A third, from criterion alone, gives those per-report
# costs for every Prio3 VDAF, and a fourth Poplar1's per pass by level (scripts/bench-vdafs.py).
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${PACKETS:-100000}
repeat=${REPEAT:-3}
echo "criterion: packet opening and verifier shares (the per-packet floor)" >&2
cargo bench --quiet --bench micro -- '^(open|verify)/' > /dev/null
echo "criterion: Prio3 intake and decision per report, every VDAF" >&2
cargo bench --quiet --bench prio3 > /dev/null
echo "criterion: Poplar1 per report per pass, by level" >&2
cargo bench --quiet --bench poplar1 > /dev/null
cargo build --release --quiet
results=$(mktemp)
dap_results=$(mktemp)
trap 'rm -f "$results" "$dap_results"' EXIT
for run in "16 ecies" "256 ecies" "2048 ecies" "16 hpke"; do
    set -- $run
    echo "bench: $packets packets, $1 bins, $2" >&2
    ./target/release/divvi bench --packets "$packets" --bins "$1" --scheme "$2" \
        --repeat "$repeat" --output json \
        | tr -d '\n' >> "$results"
    echo >> "$results"
done
for vdaf in histogram:16 histogram:256 histogram:2048; do
    echo "bench: $packets reports, DAP-18 $vdaf" >&2
    ./target/release/divvi bench --packets "$packets" --vdaf "$vdaf" \
        --repeat "$repeat" --output json \
        | tr -d '\n' >> "$dap_results"
    echo >> "$dap_results"
done
machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
RESULTS="$results" DAP_RESULTS="$dap_results" MACHINE="$machine" python3 - <<'PY'
import json, os, re

def median_us(group, bench):
    path = f"target/criterion/{group}/{bench}/new/estimates.json"
    return json.load(open(path))["median"]["point_estimate"] / 1000.0

def criterion_floor_us(bins, scheme, server):
    """One packet's open + verifier share, on one core, from criterion's hot loop."""
    if server == "0":
        return median_us(f"open_{scheme}", f"bins{bins}") + median_us("verify_leader", f"bins{bins}")
    return median_us(f"open_{scheme}", "helper") + median_us("verify_helper", f"bins{bins}")
def percent(p):
    return f"{p:.0f}%" if p is not None else "-"

def cells(s):
    """A stage's rate, range, share of its floors (other core idle / both busy / in the
    run), CPU and peak memory, as table cells."""
    of_floor = (" / ".join(percent(s[k]) for k in
                           ("of_floor_percent", "of_busy_floor_percent", "of_in_run_floor_percent"))
                if s["of_floor_percent"] is not None else "-")
    rss = f"{s['peak_rss_mib']:.0f} MiB" if s["peak_rss_mib"] is not None else "-"
    spread = f"{s['packets_per_second_min'] / 1000:,.1f}k–{s['packets_per_second_max'] / 1000:,.1f}k"
    return f"{s['packets_per_second']:,.0f}", spread, of_floor, f"{s['cpu_percent']:.0f}%", rss

# The original aggregator's packets/s (one core used), 100,000-packet batches.
ORIGINAL = {16: {"intake": 14500, "aggregate": 8100},
            256: {"intake": 3500, "aggregate": 3000},
            2048: {"intake": 450, "aggregate": 410}}
rows = ["| bins | scheme | stage | packets/s | range | vs original | of 2-core floor: alone / all busy / in run | CPU | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|"]
server_rows = ["| bins | scheme | server | floor: alone / all busy / in run | criterion open + verify | intake + aggregate, CPU time |",
               "|---|---|---|---|---|---|"]
packets = None
for line in open(os.environ["RESULTS"]):
    r = json.loads(line)
    r["bins"] = int(r["vdaf"].removeprefix("prio2:"))
    packets, cores = r["packets"], r["cores"]
    per_packet, floors = {}, {}
    for s in r["stages"]:
        kind, server = s["stage"].split()
        base = ORIGINAL.get(r["bins"], {}).get(kind)
        ratio = f"{s['packets_per_second'] / base:.1f}x" if base and r["scheme"] == "ecies" else "-"
        if kind == "intake":
            floors[server] = (s["floor_us"], s["busy_floor_us"], s["in_run_floor_us"])
        rate, spread, of_floor, cpu, rss = cells(s)
        rows.append(f"| {r['bins']} | {r['scheme']} | {s['stage']} | {rate} | {spread} | {ratio} "
                    f"| {of_floor} | {cpu} | {rss} |")
        runs = s["runs"]
        # CPU time per packet of the stage: what the server really spends.
        cpu_us = 1e6 * s["seconds"] * s["cpu_percent"] / 100 / s["packets"]
        per_packet[server] = per_packet.get(server, 0.0) + cpu_us
    for server, spent in sorted(per_packet.items()):
        floor, busy, in_run = floors[server]
        reference = criterion_floor_us(r["bins"], r["scheme"], server)
        server_rows.append(f"| {r['bins']} | {r['scheme']} | {server} | {floor:.0f} / {busy:.0f} / {in_run:.0f} µs | {reference:.0f} µs "
                           f"| {spent:.0f} µs ({spent / floor:.2f}x the floor) |")
def criterion_prio3_us(vdaf, step, role):
    """Criterion's median for one report's `step` (intake or finish) on one server."""
    group = "prio3_" + vdaf.replace(":", "_")
    return median_us(group, f"{step}_{role}")

dap_rows = ["| VDAF | stage | reports/s | range | of 2-core floor: alone / all busy / in run | CPU | peak RSS |",
            "|---|---|---|---|---|---|---|"]
dap_server_rows = ["| VDAF | server | floor: alone / all busy / in run | criterion intake | criterion decision | aggregate ÷ intake |",
                   "|---|---|---|---|---|---|"]
for line in open(os.environ["DAP_RESULTS"]):
    r = json.loads(line)
    spec = r["vdaf"]
    # The spec names the chunk length too (histogram:256:18); the table, the buckets.
    vdaf = ":".join(spec.split(":")[:2])
    rates, floors = {}, {}
    for s in r["stages"]:
        kind, server = s["stage"].split()
        rates[(kind, server)] = s["packets_per_second"]
        if kind == "intake":
            floors[server] = (s["floor_us"], s["busy_floor_us"], s["in_run_floor_us"])
        rate, spread, of_floor, cpu, rss = cells(s)
        dap_rows.append(f"| {vdaf} | {s['stage']} | {rate} | {spread} | {of_floor} | {cpu} | {rss} |")
    for server, role in [("0", "leader"), ("1", "helper")]:
        intake_us = criterion_prio3_us(vdaf, "intake", role)
        finish_us = criterion_prio3_us(vdaf, "finish", role)
        ratio = rates[("aggregate", server)] / rates[("intake", server)]
        floor, busy, in_run = floors[server]
        dap_server_rows.append(f"| {vdaf} | {server} ({role}) | {floor:.0f} / {busy:.0f} / {in_run:.0f} µs | {intake_us:.0f} µs "
                               f"| {finish_us:.1f} µs | {ratio:.1f}x |")

def replace_between(text, start, end, body):
    if start not in text:
        raise SystemExit(f"README.md has no {start} marker")
    return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{body}\n{end}",
                  text, flags=re.S)

caption = (f"_{packets:,}-report batches on {os.environ['MACHINE']}; median of {runs} "
           f"runs per stage (range: slowest to fastest); written by `scripts/bench-readme.sh`._\n\n")
text = open("README.md").read()
text = replace_between(text, "<!-- bench:start -->", "<!-- bench:end -->",
    caption + "\n".join(rows)
    + "\n\nPer packet, the whole server (the original spends two opens and two verifies):\n\n"
    + "\n".join(server_rows))
text = replace_between(text, "<!-- bench-dap:start -->", "<!-- bench-dap:end -->",
    caption + "\n".join(dap_rows)
    + "\n\nPer report, one server: the floor intake is measured against (open + verification "
    + "start + provisional finish; alone, on both cores at once, and in the run), criterion's intake and aggregate's decision, and how much faster aggregate "
    + "runs than intake:\n\n" + "\n".join(dap_server_rows))
open("README.md", "w").write(text)
PY
python3 scripts/bench-vdafs.py
echo "README.md performance tables updated" >&2
