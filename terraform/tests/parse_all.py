#!/usr/bin/env python3
"""Every Terraform file under terraform/ parses (python-hcl2), as a plan would need, and
every module call fits its module: each argument is a declared variable, every variable
without a default is given, and each `module.<call>.<output>` names a declared output.
(`terraform validate` would check this too, but it needs the providers, which cannot be
downloaded here.)"""

import re
import sys
from pathlib import Path

import hcl2
from docs import blocks, unquote

ROOT = Path(__file__).resolve().parent.parent
META = {"source", "providers", "for_each", "count", "depends_on", "__is_block__", "__comments__"}
files = sorted(p for ext in ("*.tf", "*.tfvars", "*.tfvars.example") for p in ROOT.rglob(ext) if ".terraform" not in p.parts)
failed, parsed = [], {}
for path in files:
    try:
        with path.open() as f:
            parsed[path] = hcl2.load(f)
    except Exception as e:  # noqa: BLE001 - any parse failure is reported with its file
        failed.append(f"{path.relative_to(ROOT)}: {e}")
for f in failed:
    print(f"FAILED to parse {f}")
print(f"hcl: {len(files) - len(failed)} of {len(files)} files parse")
if failed or not files:
    sys.exit(1)

wiring, calls = [], 0
for folder in sorted({p.parent for p in parsed if p.suffix == ".tf"}):
    where = folder.relative_to(ROOT)
    sources = {}
    for call, body in blocks(folder, "module"):
        calls += 1
        sources[call] = (folder / unquote(body["source"])).resolve()
        variables = dict(blocks(sources[call], "variable"))
        wiring += [f"{where}: module {call}: no variable {a} in {sources[call].name}" for a in set(body) - META - set(variables)]
        wiring += [f"{where}: module {call}: {v} is required" for v, b in variables.items() if "default" not in b and v not in body]
    for path in sorted(folder.glob("*.tf")):
        for call, output in re.findall(r"\bmodule\.([a-z_]+)\.([a-z_]+)", path.read_text()):
            if call not in sources:
                wiring.append(f"{path.relative_to(ROOT)}: no module {call}")
            elif output not in dict(blocks(sources[call], "output")):
                wiring.append(f"{path.relative_to(ROOT)}: module {call} has no output {output}")
for w in wiring:
    print(f"FAILED: {w}")
if not wiring:
    print(f"modules: {calls} module calls fit their modules' variables and outputs")
sys.exit(1 if wiring else 0)
