#!/usr/bin/env python3
"""The module's CronJobs are the jobs/ manifests, kept in step.

jobs/kubernetes/server0.yaml is what `jobs/check.py` validates against the Kubernetes
schemas and the policy (non-root, read-only root, no capabilities, ...). The
divvi-server module deploys the same jobs through the Kubernetes provider. This test
reads both (python-hcl2, PyYAML) and fails on any difference in what matters: pod and
container security, volumes and mounts, restart policy, token mounting, the flags and
environment variables passed, schedule policy, retries, the pod failure policy (exit
code 2 fails the Job at once, evictions are no retry), deadlines and resources.

Run: python terraform/tests/test_jobs_match.py
"""

import re
import sys
from pathlib import Path

import hcl2
import yaml

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "terraform" / "modules" / "divvi-server"
MANIFEST = ROOT / "jobs" / "kubernetes" / "server0.yaml"


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def plain(value):
    """An HCL block as YAML would write it: camelCase keys, single blocks unwrapped."""
    if isinstance(value, dict):
        return {camel(k.strip('"')): plain(v) for k, v in value.items() if not k.startswith("__") and k != "dynamic"}
    if isinstance(value, list):
        items = [plain(v) for v in value]
        is_block = len(value) == 1 and isinstance(value[0], dict) and value[0].get("__is_block__")
        return items[0] if is_block else items
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def module_jobs():
    with (MODULE / "kubernetes.tf").open() as f:
        parsed = hcl2.load(f)
    for entry in parsed["resource"]:
        body = entry.get('"kubernetes_cron_job_v1"', {}).get('"job"')
        if body:
            return plain(body)
    sys.exit("kubernetes.tf: no kubernetes_cron_job_v1.job")


def manifest_jobs():
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    return {d["metadata"]["name"].removeprefix("divvi-"): d for d in docs if d and d.get("kind") == "CronJob"}


def flags(args):
    return sorted(a for a in args if isinstance(a, str) and a.startswith("--"))


def failure_policy(policy, stage):
    """The module's pod_failure_policy in the manifests' shape (podFailurePolicy.rules),
    for the job whose container (each.value.stage) is named `stage`."""
    if policy is None:
        return None
    rules = policy.get("rule", [])
    out = []
    for r in rules if isinstance(rules, list) else [rules]:
        rule = {}
        for key, value in r.items():
            if key == "onExitCodes" and value.get("containerName") == "${each.value.stage}":
                value = value | {"containerName": stage}
            if key == "onPodCondition":  # one block per pattern; YAML has a list
                key, value = "onPodConditions", value if isinstance(value, list) else [value]
            rule[key] = value
        out.append(rule)
    return {"rules": out}


def job_locals(text, kind):
    """The local.jobs entry of one kind, as text (for values given per job)."""
    block = re.search(rf'"{kind}-\$\{{a\}}" => \{{(.*?)\n    \}} \}}', text, re.S)
    if not block:
        sys.exit(f"kubernetes.tf: no local.jobs entry for {kind}")
    return block.group(1)


def main():
    text = (MODULE / "kubernetes.tf").read_text()
    tf = module_jobs()
    tf_pod = tf["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    tf_container = tf_pod["container"]
    variables = {}
    with (MODULE / "variables.tf").open() as f:
        for entry in hcl2.load(f)["variable"]:
            for name, body in entry.items():
                variables[name.strip('"')] = plain(body).get("default")
    failures = []

    def same(what, ours, theirs):
        if ours != theirs:
            failures.append(f"{what}: module {ours!r} vs jobs/ {theirs!r}")

    for kind, job in manifest_jobs().items():
        spec, jt = job["spec"], job["spec"]["jobTemplate"]["spec"]
        pod = jt["template"]["spec"]
        container = pod["containers"][0]
        entry = job_locals(text, kind)
        number = lambda key: int(re.search(rf"{key}\s*=\s*(\d+)", entry).group(1))  # noqa: E731
        same(f"{kind}: pod securityContext", tf_pod["securityContext"], pod["securityContext"])
        same(f"{kind}: container securityContext", tf_container["securityContext"], container["securityContext"])
        same(f"{kind}: volumeMounts", tf_container["volumeMount"], container["volumeMounts"])
        same(f"{kind}: restartPolicy", tf_pod["restartPolicy"], pod["restartPolicy"])
        for key in ("automountServiceAccountToken", "enableServiceLinks"):
            same(f"{kind}: {key}", tf_pod[key], pod[key])
        tf_volumes = {v["name"]: sorted(k for k in v if k != "name") for v in tf_pod["volume"]}
        same(f"{kind}: volumes", tf_volumes, {v["name"]: sorted(k for k in v if k != "name") for v in pod["volumes"]})
        secret = next(v["secret"] for v in pod["volumes"] if "secret" in v)
        same(f"{kind}: keys Secret mode", int(next(v for v in tf_pod["volume"] if v["name"] == "keys")["secret"]["defaultMode"], 8), secret["defaultMode"])
        same(f"{kind}: flags", flags(re.findall(r'"(--[a-z-]+)"', entry)), flags(container["args"]))
        tf_env = set(re.findall(r"\b((?:DIVVI|AWS)_[A-Z0-9_]+|TMPDIR)\s*=", text))
        if kind == "aggregate":
            tf_env.discard("DIVVI_SHARD_COUNT")  # intake's own
        same(f"{kind}: environment variables", sorted(tf_env), sorted(e["name"] for e in container["env"]))
        same(f"{kind}: concurrencyPolicy", tf["spec"]["concurrencyPolicy"], spec["concurrencyPolicy"])
        same(f"{kind}: time zone", tf["spec"]["timezone"], spec["timeZone"])
        same(f"{kind}: startingDeadlineSeconds", number("start_limit"), spec["startingDeadlineSeconds"])
        same(f"{kind}: backoffLimit", number("retries"), jt["backoffLimit"])
        same(f"{kind}: podFailurePolicy",
             failure_policy(tf["spec"]["jobTemplate"]["spec"].get("podFailurePolicy"), kind),
             jt.get("podFailurePolicy"))
        same(f"{kind}: activeDeadlineSeconds", number("deadline"), jt["activeDeadlineSeconds"])
        same(f"{kind}: schedule (default)", variables[f"{kind}_schedule"], spec["schedule"])
        resources = container["resources"]
        same(f"{kind}: cpu and memory (default)", variables["job_resources"],
             {k: resources["requests"][k] for k in ("cpu", "memory")})
        same(f"{kind}: requests = limits", resources["requests"], resources["limits"] | {"ephemeral-storage": resources["requests"]["ephemeral-storage"]})
        for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
            same(f"{kind}: {key}", tf["spec"][key], spec[key])
    same("intake pods (default)", variables["intake_parallelism"], manifest_jobs()["intake"]["spec"]["jobTemplate"]["spec"]["parallelism"])

    for f in failures:
        print(f"FAILED: {f}")
    if failures:
        sys.exit(1)
    print(f"jobs: the module's CronJobs match {MANIFEST.relative_to(ROOT)} ({len(manifest_jobs())} jobs compared)")


if __name__ == "__main__":
    main()
