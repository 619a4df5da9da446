#!/usr/bin/env python3
"""The Inputs and Outputs tables of the Terraform READMEs, generated from the code.

Each folder under ROOT (default: terraform/) with .tf files has in its README.md, between
the BEGIN/END lines, its variables (name, type, default or "required", description) and
outputs (name, description), read with python-hcl2 8.
  --write [ROOT]  rewrite those regions (appended to a README without one)
  --check [ROOT]  exit 1 naming each README missing or out of date and each undescribed
                  variable or output (CI runs this)
  --self-test     show that --check fails on broken samples and passes on fresh ones
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import hcl2

BEGIN = "<!-- BEGIN GENERATED: inputs/outputs (terraform/tests/docs.py --write) -->"
END = "<!-- END GENERATED -->"
DEFAULT_ROOT = Path(__file__).resolve().parent.parent


def unquote(s):
    """python-hcl2 8 keeps strings as written: '"a \\"b\\""', heredocs as '"<<EOT ... EOT"'."""
    if not (isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"'):
        return s
    if s.startswith('"<<'):
        return " ".join(" ".join(s[1:-1].split("\n")[1:-1]).split())
    try:
        return json.loads(s)
    except ValueError:
        return s[1:-1]


def expr(s):
    """'${object({a = string})}' (python-hcl2's form of an expression) -> 'object({ a = string })'."""
    s = s[2:-1] if s.startswith("${") and s.endswith("}") else s
    return re.sub(r"(?<=[^\s{])\}", " }", re.sub(r"\{(?=[^\s}])", "{ ", s))


def hcl_value(v):
    """A default value in HCL syntax, on one line."""
    if isinstance(v, dict):
        items = [f"{unquote(k)} = {hcl_value(x)}" for k, x in v.items() if k != "__is_block__"]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(v, list):
        return "[" + ", ".join(map(hcl_value, v)) + "]"
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    return expr(v) if isinstance(v, str) and v.startswith("${") else str(v)


def cell(text, code=False):
    """A Markdown table cell: one line, '|' escaped, '<' '>' escaped outside code spans."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    if code:
        return f"`{text}`"
    parts = text.split("`")
    parts[::2] = [p.replace("<", "&lt;").replace(">", "&gt;") for p in parts[::2]]
    return "`".join(parts)


def blocks(directory, kind):
    """(name, body) of each `kind` block of the folder's .tf files, in file and source order."""
    parsed = [hcl2.loads(tf.read_text(encoding="utf-8")) for tf in sorted(directory.glob("*.tf"))]
    return [(unquote(n), body) for p in parsed for block in p.get(kind, []) for n, body in block.items()]


def generate(directory):
    """The generated region of a folder's README, and what has no description."""
    undocumented, lines = [], [BEGIN]
    for kind, title, head in (("variable", "Inputs", "| Name | Type | Default | Description |\n|---|---|---|---|"),
                              ("output", "Outputs", "| Name | Description |\n|---|---|")):
        found = blocks(directory, kind)
        lines += ["", f"## {title}", "", head if found else "None."]
        for name, body in found:
            text = str(unquote(body.get("description", ""))).strip()
            undocumented += [] if text else [f"{kind} {name}"]
            if kind == "output":
                lines.append(f"| `{name}` | {cell(text)} |")
                continue
            text += " Sensitive." if body.get("sensitive") is True else ""
            vtype = cell(expr(body["type"]), code=True) if "type" in body else "any"
            default = cell(hcl_value(body["default"]), code=True) if "default" in body else "required"
            lines.append(f"| `{name}` | {vtype} | {default} | {cell(text)} |")
    return "\n".join(lines + ["", END]), undocumented


def split(text):
    """(lines before, region, lines after) of a README, or None without a proper region."""
    lines = text.split("\n")
    if lines.count(BEGIN) == lines.count(END) == 1 and lines.index(BEGIN) < lines.index(END):
        b, e = lines.index(BEGIN), lines.index(END)
        return lines[:b], "\n".join(lines[b:e + 1]), lines[e + 1:]
    return None


def run(root, write):
    problems = []
    for directory in sorted({p.parent for p in root.rglob("*.tf") if ".terraform" not in p.parts}):
        readme, where = directory / "README.md", directory.relative_to(root.parent)
        region, undocumented = generate(directory)
        problems += [f"{where}: {what} has no description" for what in undocumented]
        text = readme.read_text(encoding="utf-8") if readme.exists() else None
        parts = split(text) if text is not None else None
        if parts and parts[1] == region:
            continue
        why = "missing" if text is None else "out of date" if parts else "no generated region"
        if not write:
            problems.append(f"{where}/README.md: {why} (run terraform/tests/docs.py --write)")
            continue
        head = f"# {directory.name}\n" if text is None else text.rstrip("\n") + "\n"
        readme.write_text("\n".join(parts[0] + [region] + parts[2]) if parts else f"{head}\n{region}\n", encoding="utf-8")
        print(f"wrote {where}/README.md ({why})")
    sys.stderr.write("".join(f"{problem}\n" for problem in problems))
    return 1 if problems else 0


SAMPLE_TF = r'''variable "size" {
  description = <<-EOT
    Sizes | limits, in <units>.
  EOT
  type = object({ cpu = string,
    memory = optional(string, "1Gi") })
  default = { cpu = "2" }
}
output "id" { description = "The \"id\"." }
'''
SAMPLE_ROWS = [r'| `size` | `object({ cpu = string, memory = optional(string, "1Gi") })` | `{ cpu = "2" }` '
               r"| Sizes \| limits, in &lt;units&gt;. |", '| `id` | The "id". |']


def self_test():
    """--check, run as CI runs it, on a sample module in a temporary folder."""
    results = []

    def cli(mode, root):
        return subprocess.run([sys.executable, __file__, mode, str(root)], capture_output=True, text=True)

    def expect(fails, message, what, holds=True):
        r = cli("--check", root)
        results.append(holds and (r.returncode != 0) == fails and message in r.stderr)
        print(f"{'ok  ' if results[-1] else 'FAIL'} --check {'fails' if fails else 'passes'}: {what}")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "terraform"
        (root / "modules/sample").mkdir(parents=True)
        tf, readme = root / "modules/sample/main.tf", root / "modules/sample/README.md"
        tf.write_text(SAMPLE_TF)
        readme.write_text("# sample\n\nHand-written text.\n")
        expect(True, "sample/README.md: no generated region", "README without markers")
        cli("--write", root)
        text = readme.read_text()
        rendered = all(row in text.split("\n") for row in SAMPLE_ROWS) and "Hand-written" in text
        expect(False, "", "fresh README (types, defaults, descriptions as expected)", rendered)
        readme.write_text(text.replace("Sizes", "Size"))
        expect(True, "sample/README.md: out of date", "stale table in the README")
        cli("--write", root)
        tf.write_text(SAMPLE_TF + 'variable "new" {\n  description = "Added."\n}\n')
        expect(True, "sample/README.md: out of date", "variable added, README not rewritten")
        tf.write_text(SAMPLE_TF + 'variable "bare" {}\noutput "naked" {\n  value = 1\n}\n')
        cli("--write", root)
        expect(True, "variable bare has no description", "variable without description")
        expect(True, "output naked has no description", "output without description")
        readme.unlink()
        expect(True, "sample/README.md: missing", "README missing")
    print("self-test passed" if all(results) else "self-test FAILED")
    return 0 if all(results) else 1


def main(args):
    if args == ["--self-test"]:
        return self_test()
    if args[:1] in (["--write"], ["--check"]) and len(args) <= 2:
        root = Path(args[1]).resolve() if len(args) == 2 else DEFAULT_ROOT
        return run(root, write=args[0] == "--write")
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
