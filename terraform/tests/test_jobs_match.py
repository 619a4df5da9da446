#!/usr/bin/env python3
"""The modules' workloads are the jobs/ manifests, kept in step.

jobs/kubernetes/server0.yaml is what `jobs/check.py` validates against the Kubernetes
schemas and the policy (non-root, read-only root, no capabilities, ...). The
divvi-server module deploys the same jobs through the Kubernetes provider. This test
reads both (python-hcl2, PyYAML) and fails on any difference in what matters: pod and
container security, volumes and mounts, restart policy, token mounting, the flags and
environment variables passed, schedule policy, retries, the pod failure policy (exit
code 2 fails the Job at once, evictions are no retry), deadlines and resources.

The divvi-ingestor module's StatefulSet is compared with jobs/kubernetes/ingestor.yaml
the same way: security, volumes and mounts, flags and their values, environment,
probes, grace period, resources, ports, the journal's claim template and the Services.

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
INGESTOR_MODULE = ROOT / "terraform" / "modules" / "divvi-ingestor"
INGESTOR_MANIFEST = ROOT / "jobs" / "kubernetes" / "ingestor.yaml"


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
    job = module_resources(MODULE, "kubernetes_cron_job_v1").get("job")
    if job is None:
        sys.exit("kubernetes.tf: no kubernetes_cron_job_v1.job")
    return job


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
    """The local.jobs entry of one kind, as text (for values given per job); an entry
    may end with a condition (`} if ... }`)."""
    block = re.search(rf'"{kind}-\$\{{a\}}" => \{{(.*?)\n    \}}(?: if [^\n]*)? \}}', text, re.S)
    if not block:
        sys.exit(f"kubernetes.tf: no local.jobs entry for {kind}")
    return block.group(1)


def module_resources(folder, rtype):
    with (folder / "kubernetes.tf").open() as f:
        parsed = hcl2.load(f)
    return {name.strip('"'): plain(body) for entry in parsed["resource"]
            for kind, named in entry.items() if kind.strip('"') == rtype for name, body in named.items()}


def module_defaults(folder):
    defaults = {}
    with (folder / "variables.tf").open() as f:
        for entry in hcl2.load(f)["variable"]:
            for name, body in entry.items():
                defaults[name.strip('"')] = plain(body).get("default")
    return defaults


def args_resolved(args, defaults):
    """The module's args with var.X and tostring(var.X) replaced by X's default."""
    out = []
    for a in args:
        m = re.fullmatch(r"\$\{(?:tostring\()?var\.([a-z_]+)\)?\}", str(a))
        out.append(str(defaults[m.group(1)]) if m else a)
    return out


def ingestor_failures():
    """The divvi-ingestor module's StatefulSet and Services against ingestor.yaml."""
    failures = []

    def same(what, ours, theirs):
        if ours != theirs:
            failures.append(f"ingestor {what}: module {ours!r} vs jobs/ {theirs!r}")

    docs = [d for d in yaml.safe_load_all(INGESTOR_MANIFEST.read_text()) if d]
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    defaults = module_defaults(INGESTOR_MODULE)
    tf = module_resources(INGESTOR_MODULE, "kubernetes_stateful_set_v1")["upload"]["spec"]
    tf_pod, pod = tf["template"]["spec"], sts["spec"]["template"]["spec"]
    tf_c, c = tf_pod["container"], pod["containers"][0]
    same("pod securityContext", tf_pod["securityContext"], pod["securityContext"])
    same("container securityContext", tf_c["securityContext"], c["securityContext"])
    same("volumeMounts", tf_c["volumeMount"], c["volumeMounts"])
    same("volumes", {v["name"]: sorted(k for k in v if k != "name") for v in tf_pod["volume"]},
         {v["name"]: sorted(k for k in v if k != "name") for v in pod["volumes"]})
    for key in ("automountServiceAccountToken", "enableServiceLinks", "terminationGracePeriodSeconds"):
        same(key, tf_pod[key], pod[key])
    same("args", args_resolved(tf_c["args"], defaults), c["args"])
    same("environment variables", sorted(re.findall(r"\b((?:DIVVI|AWS)_[A-Z0-9_]+|TMPDIR)\s*=",
                                                   (INGESTOR_MODULE / "kubernetes.tf").read_text())),
         sorted(e["name"] for e in c["env"]))
    same("ports", tf_c["port"], c["ports"])
    for probe in ("readinessProbe", "livenessProbe"):
        same(probe, tf_c[probe], c[probe])
    same("resources", tf_c["resources"], c["resources"])
    same("replicas (default)", defaults["replicas"], sts["spec"]["replicas"])
    same("podManagementPolicy", tf["podManagementPolicy"], sts["spec"]["podManagementPolicy"])
    claim = sts["spec"]["volumeClaimTemplates"][0]
    tf_claim = tf["volumeClaimTemplate"]
    same("claim name", tf_claim["metadata"]["name"], claim["metadata"]["name"])
    same("claim access modes", tf_claim["spec"]["accessModes"], claim["spec"]["accessModes"])
    same("claim storage class (default)", defaults["journal_storage_class"], claim["spec"]["storageClassName"])
    same("claim size (default)", defaults["journal_size"], claim["spec"]["resources"]["requests"]["storage"])
    same("claims retained", "Retain", (sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}).get("whenScaled", "Retain"))
    tf_services = module_resources(INGESTOR_MODULE, "kubernetes_service_v1")
    for name, svc in services.items():
        ours = next((v for v in tf_services.values() if v["metadata"]["name"] == name), None)
        if ours is None:
            failures.append(f"ingestor Service {name}: not in the module")
            continue
        ports = ours["spec"]["port"]
        same(f"Service {name} ports", ports if isinstance(ports, list) else [ports], svc["spec"]["ports"])
    return failures


def main():
    text = (MODULE / "kubernetes.tf").read_text()
    tf = module_jobs()
    tf_pod = tf["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    tf_container = tf_pod["container"]
    variables = module_defaults(MODULE)
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
        if kind != "intake":
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

    failures += ingestor_failures()
    for f in failures:
        print(f"FAILED: {f}")
    if failures:
        sys.exit(1)
    print(f"jobs: the module's CronJobs match {MANIFEST.relative_to(ROOT)} ({len(manifest_jobs())} jobs compared), "
          f"and divvi-ingestor's StatefulSet matches {INGESTOR_MANIFEST.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
