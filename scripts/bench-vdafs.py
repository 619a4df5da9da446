#!/usr/bin/env python3
"""Writes the README's per-VDAF table (between the bench-vdafs markers) from criterion's
results of `cargo bench --bench prio3`: one report's intake (open + verification start +
provisional finish) and aggregate's decision, on each server, for every Prio3 VDAF the
bench measures. Run by scripts/bench-readme.sh; alone after `cargo bench --bench prio3`."""
import json
import re

CASES = ["count", "sum:255", "sumvec:100:1", "histogram:16", "histogram:256",
         "histogram:2048", "multihot:256:8",
         # DAP-09 tasks: VDAF-08, as the deployed clients send it.
         "dap-09/count", "dap-09/sum:255", "dap-09/histogram:256", "dap-09/histogram:2048"]


def median_us(vdaf, bench):
    group = "prio3_" + vdaf.replace(":", "_").replace("/", "_")
    path = f"target/criterion/{group}/{bench}/new/estimates.json"
    return json.load(open(path))["median"]["point_estimate"] / 1000.0


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


body = (f"_Criterion medians, one core of an {cpu_model()}; written by "
        "`scripts/bench-vdafs.py`._\n\n"
        + "\n".join(rows))
start, end = "<!-- bench-vdafs:start -->", "<!-- bench-vdafs:end -->"
text = open("README.md").read()
if start not in text:
    raise SystemExit(f"README.md has no {start} marker")
text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{body}\n{end}",
              text, flags=re.S)
open("README.md", "w").write(text)
