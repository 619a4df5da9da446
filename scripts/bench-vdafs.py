#!/usr/bin/env python3
"""Writes the README's per-VDAF table (between the bench-vdafs markers) from criterion's
results of `cargo bench --bench prio3`: one report's intake (open + verification start +
provisional finish) and aggregate's decision, on each server, for every Prio3 VDAF the
bench measures; and the Poplar1 table (bench-poplar1 markers) from `cargo bench --bench
poplar1`: one report's pass at each level measured. Run by scripts/bench-readme.sh; alone
after both benches."""
import json
import re

CASES = ["count", "sum:255", "sumvec:100:1", "histogram:16", "histogram:256",
         "histogram:2048", "multihot:256:8",
         # DAP-09 tasks: VDAF-08, as the deployed clients send it.
         "dap-09/count", "dap-09/sum:255", "dap-09/histogram:256", "dap-09/histogram:2048"]


def criterion_us(group, bench):
    path = f"target/criterion/{group}/{bench}/new/estimates.json"
    return json.load(open(path))["median"]["point_estimate"] / 1000.0


def median_us(vdaf, bench):
    return criterion_us("prio3_" + vdaf.replace(":", "_").replace("/", "_"), bench)


def us(x):
    return f"{x:.1f} µs" if x < 10 else f"{x:.0f} µs"


rows = ["| VDAF | intake, leader | intake, helper | decision, leader | decision, helper "
        "| both servers, per report |",
        "|---|---|---|---|---|---|"]
for vdaf in CASES:
    cells = [median_us(vdaf, b) for b in
             ("intake_leader", "intake_helper", "finish_leader", "finish_helper")]
    label = vdaf.replace("dap-09/", "") + (" (DAP-09)" if vdaf.startswith("dap-09/") else "")
    rows.append(f"| {label} | " + " | ".join(us(c) for c in cells) + f" | {us(sum(cells))} |")

def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


# Poplar1 on 256-bit strings: the (level, prefixes) cases `benches/poplar1.rs` measures.
LEVELS = [(0, 2), (63, 16), (127, 16), (254, 16), (255, 16), (127, 400), (255, 400)]
poplar_rows = ["| level | prefixes | start, leader | start, helper | whole pass, both servers |",
               "|---|---|---|---|---|"]
for level, prefixes in LEVELS:
    group = f"poplar1_level-{level}_{prefixes}"
    cells = [criterion_us(group, b) for b in ("start_leader", "start_helper", "pass_both")]
    poplar_rows.append(f"| {level} | {prefixes} | "
                       + " | ".join(us(c) for c in cells) + " |")


def replace_between(text, name, body):
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text:
        raise SystemExit(f"README.md has no {start} marker")
    return re.sub(re.escape(start) + ".*?" + re.escape(end),
                  lambda _: f"{start}\n{body}\n{end}", text, flags=re.S)


caption = f"_Criterion medians, one core of an {cpu_model()}; written by `scripts/bench-vdafs.py`._\n\n"
text = open("README.md").read()
text = replace_between(text, "bench-vdafs", caption + "\n".join(rows))
text = replace_between(text, "bench-poplar1", caption + "\n".join(poplar_rows))
open("README.md", "w").write(text)
