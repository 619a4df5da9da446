#!/usr/bin/env python3
"""Every Terraform file under terraform/ parses (python-hcl2), as a plan would need."""

import sys
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parent.parent
files = sorted(p for ext in ("*.tf", "*.tfvars", "*.tfvars.example") for p in ROOT.rglob(ext) if ".terraform" not in p.parts)
failed = []
for path in files:
    try:
        with path.open() as f:
            hcl2.load(f)
    except Exception as e:  # noqa: BLE001 - any parse failure is reported with its file
        failed.append(f"{path.relative_to(ROOT)}: {e}")
for f in failed:
    print(f"FAILED to parse {f}")
print(f"hcl: {len(files) - len(failed)} of {len(files)} files parse")
sys.exit(1 if failed or not files else 0)
