#!/usr/bin/env python3
"""The divvi-server module's jobs run with a config and flags divvi accepts.

1. Renders the module's server.toml template with Terraform's own `templatefile`
   (`terraform console`, offline) for both servers, using the public keys and key ids
   of a real `divvi keygen` run, and loads each with `divvi check` next to keygen's key
   files: every key named loads, every trusted key parses (the portal's too, which
   must come out as keygen's `trust.portal`), every location opens; without portal keys
   it loads as well. The template arguments must be exactly the ones kubernetes.tf
   passes.
2. A config naming a key file the Secret does not hold must fail `divvi check`, naming
   the file (the check can fail).
3. Every `--flag` and DIVVI_* variable the module's CronJobs pass exists in the built
   binary's `--help` for that subcommand.
4. The divvi-ingestor module's ingestor.toml, rendered the same way from keygen's
   ingestor config, loads with `divvi check --as ingestor` beside the task file, and every
   flag its StatefulSet passes to `divvi serve` exists.

Run: python terraform/tests/test_divvi_config.py --divvi-bin target/debug/divvi
     [--terraform PATH]   (needs Terraform; no providers, no network)
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

MODULE = Path(__file__).resolve().parent.parent / "modules" / "divvi-server"
TEMPLATE = MODULE / "templates" / "server.toml.tftpl"
INGESTOR_MODULE = MODULE.parent / "divvi-ingestor"

def hcl_value(value):
    """A Python value as an HCL literal (strings, numbers, lists, objects)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{k} = {hcl_value(v)}" for k, v in value.items()) + " }"

def render(terraform, variables, template=TEMPLATE):
    expr = f"jsonencode(templatefile({json.dumps(str(template))}, {hcl_value(variables)}))\n"
    with tempfile.TemporaryDirectory() as empty:  # no configuration: nothing to init
        done = subprocess.run([terraform, "console"], input=expr, capture_output=True, text=True, cwd=empty)
    if done.returncode != 0:
        sys.exit(f"terraform console failed: {done.stderr.strip()}")
    # console prints the JSON string as an HCL string literal: decode twice.
    return json.loads(json.loads(done.stdout.strip()))

def template_arguments():
    """The argument names kubernetes.tf passes to templatefile."""
    text = (MODULE / "kubernetes.tf").read_text()
    call = re.search(r"templatefile\([^,]+,\s*\{(.*?)\n\s*\}\)", text, re.S)
    if not call:
        sys.exit("kubernetes.tf: no templatefile(...) call found")
    return {m.group(1) for m in re.finditer(r"^\s*([a-z_]+)\s*=", call.group(1), re.M)}

def module_variables(keygen_config, n):
    peer = 1 - n
    name = ("pha", "facilitator")[n] + "-divvi"
    peer_name = ("pha", "facilitator")[peer] + "-divvi"
    c = keygen_config
    return {
        "server_index": n,
        "instance": c["instance"],
        "stash_key_file": f"server{n}-stash.key",
        "buckets": {k: f"{name}-{k.replace('_', '-')}" for k in ("ingestion", "own", "peer_inbox", "sum_parts")},
        "region": "us-west-2",
        "peer_inbox_bucket": f"{peer_name}-peer-inbox",
        "peer_inbox_writer_role_arn": f"arn:aws:iam::22222222222{peer}:role/{peer_name}-peer-inbox-writer",
        "signing_key_id": c["signing_key"]["id"],
        "packet_key_ids": [k["id"] for k in c["packet_keys"]],
        "packet_key_scheme": c["packet_keys"][0]["scheme"],
        "trusted_ingestor_keys": c["trust"]["ingestors"],
        "trusted_peer_keys": c["trust"]["peer"],
        "trusted_portal_keys": c["trust"]["portal"],
        "min_clients": 100,
        "dap_task": False,
    }

def divvi_check(divvi, config):
    return subprocess.run([divvi, "check", "--config", str(config)], capture_output=True, text=True)

def flags_exist(divvi, module=MODULE, subcommands=("intake", "aggregate", "passes"), at_least=3):
    """[problem] for each flag or DIVVI_* variable of a module's workloads that divvi does
    not know; each subcommand's args must show at least `at_least` flags."""
    text = (module / "kubernetes.tf").read_text()
    problems = []
    where = f"{module.name} kubernetes.tf"
    for sub in subcommands:
        help_text = subprocess.run([divvi, sub, "--help"], capture_output=True, text=True).stdout
        help_text += subprocess.run([divvi, "--help"], capture_output=True, text=True).stdout
        block = re.search(rf'args\s*=\s*\["{sub}",(.*?)\]', text, re.S)
        if not block:
            problems.append(f"{where}: no args for {sub}")
            continue
        found = re.findall(r'"(--[a-z-]+)"', block.group(1))
        if len(found) < at_least:
            problems.append(f"{where}: only {found} found as flags of {sub}; is the test reading the right args?")
        for flag in found:
            if not re.search(rf"\s{re.escape(flag)}[\s=<]", help_text):
                problems.append(f"{where}: `divvi {sub} {flag}` is not an option of the binary")
    all_help = "".join(
        subprocess.run([divvi, *cmd, "--help"], capture_output=True, text=True).stdout
        for cmd in ([], *([s] for s in subcommands))
    )
    for var in sorted(set(re.findall(r"\b(DIVVI_[A-Z_]+)\b", text))):
        if var not in all_help:
            problems.append(f"{where}: {var} is read by no divvi option")
    return problems

def ingestor_failures(divvi, terraform, out):
    """The divvi-ingestor module's config loads as keygen's ingestor; its serve flags exist."""
    failures = []
    keygen = tomllib.loads((out / "ingestor.toml").read_text())
    variables = {
        "signing_key_id": keygen["signing_key"]["id"],
        "packet_key_scheme": keygen["servers"][0]["packet_scheme"],
        "servers": [
            {"ingestion_bucket": f"{side}-divvi-ingestion", "region": "us-west-2",
             "put_role_arn": f"arn:aws:iam::11111111111{n}:role/{side}-divvi-ingestor",
             "packet_key_id": server["packet_key_id"], "packet_public_key": server["packet_public_key"]}
            for n, (side, server) in enumerate(zip(("pha", "facilitator"), keygen["servers"]))
        ],
    }
    rendered = out / "terraform-ingestor.toml"
    rendered.write_text(render(terraform, variables, INGESTOR_MODULE / "templates" / "ingestor.toml.tftpl"))
    done = subprocess.run([divvi, "check", "--as", "ingestor", "--config", str(rendered)], capture_output=True, text=True)
    expected = ["server 0     s3://pha-divvi-ingestion/", "server 1     s3://facilitator-divvi-ingestion/", "dap task"]
    if done.returncode != 0 or any(e not in done.stdout for e in expected):
        failures.append(f"ingestor: divvi does not load the module's ingestor.toml: {done.stderr.strip()} {done.stdout}")
    else:
        print("ingestor: the module's ingestor.toml loads")
    failures += flags_exist(divvi, INGESTOR_MODULE, ("serve",), at_least=5)
    return failures

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--divvi-bin", required=True)
    parser.add_argument("--terraform", default="terraform")
    a = parser.parse_args()
    divvi = str(Path(a.divvi_bin).resolve())
    # render() runs Terraform in a temporary folder: make a relative path absolute.
    terraform = a.terraform if "/" not in a.terraform else str(Path(a.terraform).resolve())
    failures = []

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "deploy"
        subprocess.run([divvi, "keygen", "--out", str(out), "--s3-region", "us-west-2", "--vdaf", "histogram:8"], check=True, capture_output=True)
        # The keys Secret holds the (public) task file beside the task's secrets.
        (out / "keys" / "task.json").write_text((out / "task.json").read_text())
        for n in (0, 1):
            keygen_config = tomllib.loads((out / f"server{n}.toml").read_text())
            variables = module_variables(keygen_config, n)
            if set(variables) != template_arguments():
                failures.append(f"template arguments differ from kubernetes.tf's: test {sorted(variables)} vs module {sorted(template_arguments())}")
            rendered = out / f"terraform-server{n}.toml"
            rendered.write_text(render(terraform, variables))
            done = divvi_check(divvi, rendered)
            if done.returncode != 0:
                failures.append(f"server {n}: divvi does not load the module's config: {done.stderr.strip()}")
            else:
                expected = [
                    f"server {n} config",
                    f"ingestion    s3://{variables['buckets']['ingestion']}/",
                    f"peer_outbox  s3://{variables['peer_inbox_bucket']}/",
                    f"sum_parts    s3://{variables['buckets']['sum_parts']}/",
                    f"signing key  server{n}-signing",
                ]
                missing = [e for e in expected if e not in done.stdout]
                if missing:
                    failures.append(f"server {n}: `divvi check` output lacks {missing}:\n{done.stdout}")
                print(f"server {n}: the module's server.toml loads ({len(done.stdout.splitlines())} lines of `divvi check`)")
            portal = tomllib.loads(rendered.read_text())["trust"].get("portal")
            if portal != keygen_config["trust"]["portal"]:
                failures.append(f"server {n}: trust.portal is {portal!r}, not keygen's {keygen_config['trust']['portal']!r}")

            # No portal key (a server without heavy hitters): it loads all the same.
            rendered.write_text(render(terraform, dict(variables, trusted_portal_keys=[])))
            done = divvi_check(divvi, rendered)
            if done.returncode != 0:
                failures.append(f"server {n}: the module's config without portal keys does not load: {done.stderr.strip()}")

            # With dap_task, the [dap] section names the Secret's task files, and they load.
            rendered.write_text(render(terraform, dict(variables, dap_task=True)))
            done = divvi_check(divvi, rendered)
            role = ("leader", "helper")[n]
            if done.returncode != 0 or f"dap role     {role}" not in done.stdout:
                failures.append(f"server {n}: the module's config with dap_task does not load as the {role}: {done.stderr.strip()}")

            # A key id the Secret has no file for must fail, naming the file.
            wrong = dict(variables, signing_key_id=f"server{n}-signing-2027")
            rendered.write_text(render(terraform, wrong))
            done = divvi_check(divvi, rendered)
            if done.returncode == 0 or f"server{n}-signing-2027.key" not in done.stderr:
                failures.append(f"server {n}: a config naming a missing key file was not refused by name: {done.stderr.strip()}")

        failures += ingestor_failures(divvi, terraform, out)

    failures += flags_exist(divvi)
    for f in failures:
        print(f"FAILED: {f}")
    if failures:
        sys.exit(1)
    print("divvi config: rendered configs load, a missing key is refused, every job flag exists")

if __name__ == "__main__":
    main()
