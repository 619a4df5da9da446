#!/usr/bin/env python3
"""Checks the deployable job definitions in jobs/.

1. Every YAML file under jobs/kubernetes is validated with `kubernetes-validate --strict`
   against the oldest Kubernetes version the manifests support (MIN_KUBERNETES) and the
   newest one the installed kubernetes-validate ships. A warning (an unknown kind or
   apiVersion, which kubernetes-validate lets pass) counts as a failure.
2. Policy, checked here with PyYAML: every container runs as a numeric non-root user
   with a read-only root filesystem, no privilege escalation, all capabilities dropped,
   seccomp RuntimeDefault, CPU and memory requests and limits, a pinned image (no
   `:latest`) and a writable emptyDir for TMPDIR; Secrets are mounted read-only with
   defaultMode 0400 and never shipped as objects; CronJobs forbid concurrent runs and set
   deadlines, retries, TTL and history limits; every Job has a podFailurePolicy whose
   first rule matching exit code 2 (usage or configuration error) of each divvi
   container is FailJob naming that container (no retries: they would fail the same
   way), and whose first rule on the DisruptionTarget condition is Ignore (an evicted
   pod uses up no retry), with restartPolicy Never; the intake Job is Indexed with
   completions == parallelism == DIVVI_SHARD_COUNT; the aggregate and passes Jobs are one
   pod each; the config each job reads is in a ConfigMap, parses, and points at key files inside the
   mounted Secret; the two servers' configs point at each other. The upload server
   (`divvi serve`) runs in a StatefulSet whose --journal is a volumeClaimTemplate's mount
   (an acknowledged report must outlive its pod), kept when scaled down or deleted, with
   /readyz and /healthz probes, a grace period that leaves time to drain and flush,
   --listen on all interfaces, and a Service that selects its pods and port.
3. With a divvi binary (argument, --divvi-bin or env DIVVI_BIN): every `--flag` the
   manifests and jobs/crontab.example pass to `divvi SUBCOMMAND` appears in
   `divvi SUBCOMMAND --help`, and every DIVVI_* variable they set appears in the help.

Exits non-zero naming the file and object of every failure. `--self-test` breaks loaded
manifests in memory (and one on disk, for kubernetes-validate) and asserts that each
break is caught.
"""

import argparse
import copy
import importlib.util
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("check.py needs PyYAML (it comes with kubernetes-validate: "
             "python3 -m pip install 'kubernetes-validate>=1.28')")

try:
    import tomllib  # Python 3.11+
except ImportError:  # pragma: no cover
    tomllib = None

JOBS = Path(__file__).resolve().parent
REPO = JOBS.parent
MANIFESTS = JOBS / "kubernetes"
CRONTAB = JOBS / "crontab.example"

# The oldest Kubernetes the manifests are validated for (every field they use is GA by
# then: CronJob timeZone since 1.27, Indexed Jobs since 1.24), besides the newest schema
# the installed kubernetes-validate ships.
MIN_KUBERNETES = "1.30.0"

POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
                  "StorageClass", "CustomResourceDefinition", "PersistentVolume"}
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
# divvi's exit code for a usage or configuration error (src/cli/outcome.rs): retrying
# will not help, so a Job must fail at once on it.
EXIT_USAGE = 2
SCHEDULED_SUBCOMMANDS = {"intake", "aggregate", "passes"}
# Jobs of one pod: a window's sum (aggregate) or a pass's rounds (passes) are run by one
# process on each server.
SINGLE_POD_SUBCOMMANDS = {"aggregate", "passes"}
# Subcommands whose --config the policy check loads (the ingestor's for serve).
CONFIG_SUBCOMMANDS = SCHEDULED_SUBCOMMANDS | {"serve"}
# divvi serve drains requests for up to 30 s on SIGTERM, then flushes its journal.
MIN_SERVE_GRACE_SECONDS = 60


def rel(path):
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def dig(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def describe(path, doc):
    """`jobs/kubernetes/x.yaml: CronJob ns/name`, for messages."""
    meta = doc.get("metadata") or {}
    name = meta.get("name", "?")
    if meta.get("namespace"):
        name = f"{meta['namespace']}/{name}"
    return f"{rel(path)}: {doc.get('kind', '?')} {name}"


def load_manifests(folder=MANIFESTS):
    """{path: [documents]} for every YAML file under `folder`, in name order."""
    files = {}
    for path in sorted(list(folder.rglob("*.yaml")) + list(folder.rglob("*.yml"))):
        with open(path, encoding="utf-8") as f:
            try:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as e:
                raise SystemExit(f"FAIL {rel(path)}: not valid YAML: {e}")
        files[path] = docs
    return files


# --- kubernetes-validate -------------------------------------------------------------

def kubernetes_validate_command():
    exe = shutil.which("kubernetes-validate")
    if exe:
        return [exe]
    if importlib.util.find_spec("kubernetes_validate"):
        return [sys.executable, "-m", "kubernetes_validate"]
    return None


def kubernetes_validate_info(cmd):
    """(tool version, newest Kubernetes version it ships schemas for)."""
    version = subprocess.run(cmd + ["--version"], capture_output=True, text=True).stdout.strip()
    helptext = subprocess.run(cmd + ["--help"], capture_output=True, text=True).stdout
    m = re.search(r"Defaults\s+to\s+(\d+\.\d+\.\d+)", helptext)
    return version, (m.group(1) if m else None)


def version_key(v):
    return tuple(int(x) for x in v.split("."))


def run_kubernetes_validate(cmd, paths, versions, expected_passes):
    """Failures (strings) from `kubernetes-validate --strict`; a WARN is a failure."""
    args = cmd + ["--strict"]
    for v in versions:
        args += ["-k", v]
    proc = subprocess.run(args + [str(p) for p in paths], capture_output=True, text=True)
    failures, passes = [], 0
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith("INFO ") and " passed for resource " in line:
            passes += 1
        elif line.strip():
            failures.append(f"kubernetes-validate: {line.strip()}")
    if proc.returncode != 0 and not failures:
        failures.append(f"kubernetes-validate exited with {proc.returncode}")
    if not failures and passes != expected_passes:
        failures.append(f"kubernetes-validate passed {passes} object checks, "
                        f"expected {expected_passes} (objects x versions)")
    return failures, passes


# --- policy ---------------------------------------------------------------------------

def divvi_subcommand(container):
    """The divvi subcommand a container runs (image entrypoint is divvi), or None."""
    command = container.get("command") or []
    args = container.get("args") or []
    words = [str(w) for w in command + args]
    if command:
        if not posixpath.basename(str(command[0])) == "divvi":
            return None, []
        words = words[1:]
    if words and not words[0].startswith("-"):
        return words[0], words[1:]
    return None, words


def env_of(container):
    return {e.get("name"): e for e in container.get("env") or [] if isinstance(e, dict)}


def flag_value(args, flag):
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def image_problem(image):
    if not image:
        return "has no image"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (that means :latest); pin a version or digest"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses :latest; pin a version or digest"
    return None


def secret_volume(volume):
    """Whether a volume carries Secret data (a secret, or a projected secret)."""
    if "secret" in volume:
        return True
    sources = dig(volume, "projected", "sources") or []
    return any("secret" in s for s in sources if isinstance(s, dict))


def check_pod(where, pod, fail, claims=()):
    """Pod-level and container-level policy; returns the containers checked. `claims` are
    the names of a StatefulSet's volumeClaimTemplates, volumes of the pod too."""
    pod_sc = pod.get("securityContext") or {}
    volumes = {name: {"persistentVolumeClaim": {"claimName": name}} for name in claims}
    volumes.update({v.get("name"): v for v in pod.get("volumes") or []})

    if pod.get("automountServiceAccountToken") is not False:
        fail(where, "automountServiceAccountToken must be false (divvi does not use the "
                    "Kubernetes API; the IRSA token is a separate projected volume)")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            fail(where, f"{key} must not be set")
    if not isinstance(pod_sc.get("fsGroup"), int):
        fail(where, "securityContext.fsGroup must be a number (lets the non-root user "
                    "read the 0400 Secret files)")

    for name, v in volumes.items():
        if "hostPath" in v:
            fail(where, f"volume {name}: hostPath volumes are not allowed")
        modes = []
        if "secret" in v:
            modes.append(("defaultMode", v["secret"].get("defaultMode")))
            modes += [(f"items[{i['key']}].mode", i["mode"])
                      for i in v["secret"].get("items") or [] if "mode" in i]
            if v["secret"].get("defaultMode") is None:
                fail(where, f"volume {name}: secret defaultMode must be set to 0400")
        for label, mode in modes:
            if mode is not None and (not isinstance(mode, int) or mode & ~0o440):
                fail(where, f"volume {name}: secret {label} is {mode!r} "
                            f"(octal {oct(mode) if isinstance(mode, int) else '?'}); "
                            "must be 0400 (or 0440): owner/group read only")

    containers = list(pod.get("initContainers") or []) + list(pod.get("containers") or [])
    if not containers:
        fail(where, "pod template has no containers")
    for c in containers:
        check_container(f"{where}: container {c.get('name', '?')}", c, pod_sc, volumes, fail)
    return containers


def check_container(where, c, pod_sc, volumes, fail):
    sc = c.get("securityContext") or {}

    def effective(key):
        return sc[key] if key in sc else pod_sc.get(key)

    problem = image_problem(c.get("image"))
    if problem:
        fail(where, problem)
    if effective("runAsNonRoot") is not True:
        fail(where, "runAsNonRoot must be true")
    for key in ("runAsUser", "runAsGroup"):
        value = effective(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            fail(where, f"{key} must be a non-zero number, not {value!r}")
    if sc.get("readOnlyRootFilesystem") is not True:
        fail(where, "securityContext.readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False:
        fail(where, "securityContext.allowPrivilegeEscalation must be false")
    if sc.get("privileged"):
        fail(where, "securityContext.privileged must not be true")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        fail(where, "securityContext.capabilities.drop must contain ALL")
    if caps.get("add"):
        fail(where, f"securityContext.capabilities.add must be empty, not {caps['add']}")
    seccomp = dig(sc, "seccompProfile", "type") or dig(pod_sc, "seccompProfile", "type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        fail(where, "seccompProfile.type must be RuntimeDefault (pod or container)")

    resources = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            if res not in (resources.get(kind) or {}):
                fail(where, f"resources.{kind}.{res} must be set")

    mounts = c.get("volumeMounts") or []
    for m in mounts:
        v = volumes.get(m.get("name"))
        if v is None:
            fail(where, f"volumeMount {m.get('name')} names no volume of the pod")
        elif secret_volume(v) and m.get("readOnly") is not True:
            fail(where, f"Secret volume {m.get('name')} must be mounted readOnly: true "
                        f"(at {m.get('mountPath')})")

    # A read-only root filesystem needs a writable temp dir: TMPDIR on an emptyDir.
    tmpdir = (env_of(c).get("TMPDIR") or {}).get("value")
    if not tmpdir:
        fail(where, "env TMPDIR must be set (divvi spools validation batches there)")
    else:
        ok = any(m.get("mountPath", "").rstrip("/") == tmpdir.rstrip("/")
                 and "emptyDir" in (volumes.get(m.get("name")) or {})
                 and not m.get("readOnly") for m in mounts)
        if not ok:
            fail(where, f"TMPDIR={tmpdir} must be a writable emptyDir mount")


def exit_rule_matches(rule, container, code):
    """Whether a podFailurePolicy rule matches `container` exiting with `code`."""
    req = rule.get("onExitCodes")
    if not isinstance(req, dict):
        return False
    if req.get("containerName") not in (None, container):
        return False
    values = req.get("values") or []
    if req.get("operator") == "In":
        return code in values
    if req.get("operator") == "NotIn":
        return code not in values
    return False


def check_pod_failure_policy(where, job, containers, fail):
    """Exit 2 fails the Job at once; a pod evicted by a node drain is not a retry."""
    policy = job.get("podFailurePolicy")
    rules = [r for r in (policy or {}).get("rules") or [] if isinstance(r, dict)]
    if not rules:
        fail(where, f"Job spec podFailurePolicy must be set: exit code {EXIT_USAGE} "
                    "(usage or configuration error) must fail the Job at once (FailJob), "
                    "not be retried")
        return
    restart = dig(job, "template", "spec", "restartPolicy")
    if restart != "Never":
        fail(where, f"podFailurePolicy needs restartPolicy Never, not {restart!r}")
    names = {c.get("name") for c in containers}
    for i, rule in enumerate(rules):
        named = dig(rule, "onExitCodes", "containerName")
        if named is not None and named not in names:
            fail(where, f"podFailurePolicy rule {i} names no container of the pod: "
                        f"{named!r} (containers: {sorted(n for n in names if n)})")
    for c in containers:
        if divvi_subcommand(c)[0] is None:
            continue
        name = c.get("name")
        first = next((r for r in rules if exit_rule_matches(r, name, EXIT_USAGE)), None)
        if first is None:
            fail(where, f"no podFailurePolicy rule matches exit code {EXIT_USAGE} of "
                        f"container {name}: add one with action FailJob")
        elif first.get("action") != "FailJob":
            fail(where, f"the first podFailurePolicy rule matching exit code {EXIT_USAGE} "
                        f"of container {name} is {first.get('action')}, not FailJob: a "
                        "usage or configuration error must not be retried")
        elif dig(first, "onExitCodes", "containerName") != name:
            fail(where, f"the FailJob rule for exit code {EXIT_USAGE} must name the "
                        f"container (containerName: {name})")
    disruption = next((r for r in rules if any(
        isinstance(p, dict) and p.get("type") == "DisruptionTarget"
        and p.get("status", "True") == "True" for p in r.get("onPodConditions") or [])),
        None)
    if disruption is None or disruption.get("action") != "Ignore":
        fail(where, "podFailurePolicy must Ignore pods with the DisruptionTarget condition "
                    "(evicted or preempted, e.g. by a node drain: not a retry)")


def check_job_spec(where, job, containers, scheduled, fail):
    for key in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        if not isinstance(job.get(key), int):
            fail(where, f"Job spec {key} must be set")
    restart = dig(job, "template", "spec", "restartPolicy")
    if restart not in ("Never", "OnFailure"):
        fail(where, f"restartPolicy must be Never or OnFailure, not {restart!r}")
    check_pod_failure_policy(where, job, containers, fail)

    for c in containers:
        sub, args = divvi_subcommand(c)
        env = env_of(c)
        cwhere = f"{where}: container {c.get('name', '?')}"
        shard_env = env.get("DIVVI_SHARD_COUNT")
        if scheduled and sub in SCHEDULED_SUBCOMMANDS and "--pending" not in args:
            fail(cwhere, f"a scheduled {sub} must pass --pending")
        if sub == "intake" or shard_env is not None:
            completions, parallelism = job.get("completions"), job.get("parallelism")
            if job.get("completionMode") != "Indexed":
                fail(cwhere, "the intake Job must be an Indexed Job (completionMode: Indexed)")
            if not isinstance(completions, int) or completions < 1:
                fail(cwhere, f"completions must be a positive number, not {completions!r}")
            elif parallelism != completions:
                fail(cwhere, f"parallelism ({parallelism}) must equal completions "
                             f"({completions}): change them and DIVVI_SHARD_COUNT together")
            shard = shard_env.get("value") if shard_env else None
            if shard is None:
                fail(cwhere, "env DIVVI_SHARD_COUNT must be set to the Job's completions")
            elif str(shard) != str(completions):
                fail(cwhere, f"DIVVI_SHARD_COUNT is {shard!r} but completions is "
                             f"{completions}: they must be equal (and parallelism too)")
            if any(a == "--shard" or a.startswith("--shard=") for a in args):
                fail(cwhere, "--shard must not be passed in an Indexed Job (it would give "
                             "every pod the same shard); the index comes from the Job")
        if sub in SINGLE_POD_SUBCOMMANDS:
            if job.get("completionMode") == "Indexed" or (job.get("completions") or 1) != 1 \
                    or (job.get("parallelism") or 1) != 1:
                fail(cwhere, f"a {sub} Job must be a single pod (completions and "
                             "parallelism 1, not Indexed)")


def check_cronjob(where, doc, fail):
    spec = doc.get("spec") or {}
    if spec.get("concurrencyPolicy") != "Forbid":
        fail(where, f"concurrencyPolicy must be Forbid, not {spec.get('concurrencyPolicy')!r}")
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit",
                "failedJobsHistoryLimit"):
        if not isinstance(spec.get(key), int):
            fail(where, f"{key} must be set")


def config_sources(config):
    """(label, secret source) of every secret a server config reads."""
    out = []
    if isinstance(config.get("stash_key"), dict):
        out.append(("stash_key", config["stash_key"]))
    secret = dig(config, "signing_key", "secret")
    if isinstance(secret, dict):
        out.append(("signing_key.secret", secret))
    for i, k in enumerate(config.get("packet_keys") or []):
        if isinstance(k.get("secret"), dict):
            out.append((f"packet_keys[{i}].secret", k["secret"]))
    return out


def location_url(location):
    return location.get("url") if isinstance(location, dict) else location


def check_config(where, c, pod, objects, namespace, fail):
    """The --config file: mounted from a ConfigMap, parses, its key files are mounted.
    Returns the parsed config, or None."""
    sub, args = divvi_subcommand(c)
    path = flag_value(args, "--config")
    if sub not in CONFIG_SUBCOMMANDS:
        return None
    if not path:
        fail(where, f"{sub} must be given --config")
        return None
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = c.get("volumeMounts") or []
    source = None
    for m in mounts:
        mp = m.get("mountPath", "").rstrip("/")
        v = volumes.get(m.get("name")) or {}
        if "configMap" not in v:
            continue
        if mp == path and m.get("subPath"):
            source = (v["configMap"], m["subPath"])
        elif path.startswith(mp + "/") and not m.get("subPath"):
            inner = path[len(mp) + 1:]
            items = {i.get("path"): i.get("key") for i in v["configMap"].get("items") or []}
            source = (v["configMap"], items.get(inner, inner) if items else inner)
    if source is None:
        fail(where, f"--config {path} is not a file mounted from a ConfigMap")
        return None
    cm_ref, key = source
    cm = objects.get(("ConfigMap", namespace, cm_ref.get("name")))
    if cm is None:
        fail(where, f"ConfigMap {namespace}/{cm_ref.get('name')} (mounted for --config) is "
                    "not defined in the manifests")
        return None
    text = (cm.get("data") or {}).get(key)
    if text is None:
        fail(where, f"ConfigMap {cm_ref.get('name')} has no key {key!r} for --config {path}")
        return None
    if tomllib is None:
        return None
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        fail(where, f"ConfigMap {cm_ref.get('name')} key {key}: not valid TOML: {e}")
        return None

    base = posixpath.dirname(path)
    env = env_of(c)
    secret_mounts = [(m.get("mountPath", "").rstrip("/"), volumes.get(m.get("name")) or {})
                     for m in mounts if secret_volume(volumes.get(m.get("name")) or {})]
    for label, src in config_sources(config):
        if "file" in src:
            file = posixpath.normpath(posixpath.join(base, src["file"]))
            hit = [(mp, v) for mp, v in secret_mounts if file.startswith(mp + "/")]
            if not hit:
                fail(where, f"config {label} file {file} is not inside a mounted Secret")
                continue
            mp, v = hit[0]
            items = [i.get("path") for i in dig(v, "secret", "items") or []]
            if items and file[len(mp) + 1:] not in items:
                fail(where, f"config {label} file {file} is not among the Secret's items")
        elif "env" in src:
            var = env.get(src["env"])
            if var is None:
                fail(where, f"config {label} reads env {src['env']}, which the container "
                            "does not set")
            elif "value" in var:
                fail(where, f"config {label}: env {src['env']} must come from a Secret "
                            "(valueFrom.secretKeyRef), not a literal value")
    return config


def check_upload_server(where, doc, pod, container, services, fail):
    """A `divvi serve` container: durable journal, probes, grace period, a Service."""
    _, args = divvi_subcommand(container)
    if doc.get("kind") != "StatefulSet":
        fail(where, f"divvi serve must run in a StatefulSet, not a {doc.get('kind')}: each "
                    "replica's journal needs a volume that outlives the pod")
        return
    spec = doc.get("spec") or {}
    journal = (flag_value(args, "--journal") or "").rstrip("/")
    claims = {dig(t, "metadata", "name") for t in spec.get("volumeClaimTemplates") or []}
    mounted = {m.get("mountPath", "").rstrip("/"): m.get("name")
               for m in container.get("volumeMounts") or []}
    if not journal:
        fail(where, "divvi serve must be given --journal")
    elif mounted.get(journal) not in claims:
        fail(where, f"--journal {journal} must be the mount of a volumeClaimTemplate "
                    "(acknowledged reports wait there until flushed; an emptyDir dies "
                    "with the pod)")
    retention = spec.get("persistentVolumeClaimRetentionPolicy") or {}
    for when in ("whenDeleted", "whenScaled"):
        if retention.get(when, "Retain") != "Retain":
            fail(where, f"persistentVolumeClaimRetentionPolicy.{when} must be Retain: a "
                        "claim may hold acknowledged reports not yet flushed")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        if dig(container, probe, "httpGet", "path") != path:
            fail(where, f"{probe} must be an httpGet of {path}")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not isinstance(grace, int) or grace < MIN_SERVE_GRACE_SECONDS:
        fail(where, f"terminationGracePeriodSeconds is {grace!r}; must be at least "
                    f"{MIN_SERVE_GRACE_SECONDS} (SIGTERM drains for up to 30 s, then flushes)")
    listen = flag_value(args, "--listen") or "127.0.0.1:8080"
    if listen.startswith("127.") or listen.startswith("localhost"):
        fail(where, f"--listen {listen} is loopback: the Service cannot reach it")
    labels = dig(spec, "template", "metadata", "labels") or {}
    ports = {p.get("name") for p in container.get("ports") or []}
    reaching = [svc for svc in services
                if dig(svc, "metadata", "namespace") == dig(doc, "metadata", "namespace")
                and (dig(svc, "spec", "clusterIP") != "None")
                and (dig(svc, "spec", "selector") or {})
                and (dig(svc, "spec", "selector") or {}).items() <= labels.items()]
    if not reaching:
        fail(where, "no Service (other than a headless one) selects the upload pods")
    for svc in reaching:
        for port in dig(svc, "spec", "ports") or []:
            if port.get("targetPort") not in ports:
                fail(where, f"Service {dig(svc, 'metadata', 'name')} targets port "
                            f"{port.get('targetPort')!r}, which the container does not name")


def check_server_pair(configs, fail):
    """server0's and server1's configs, when both are in the manifests, match up."""
    by_index = {}
    for where, config in configs:
        by_index.setdefault(config.get("server_index"), (where, config))
    if 0 not in by_index or 1 not in by_index:
        return
    (w0, c0), (w1, c1) = by_index[0], by_index[1]

    def loc(config, key):
        return location_url(dig(config, "locations", key))
    if c0.get("instance") != c1.get("instance"):
        fail(w1, f"instance {c1.get('instance')!r} differs from server 0's "
                 f"{c0.get('instance')!r}; sum parts of both servers share it")
    for a, wa, b, wb in ((c0, w0, c1, "server 1"), (c1, w1, c0, "server 0")):
        if loc(a, "peer_outbox") != loc(b, "peer_inbox"):
            fail(wa, f"peer_outbox {loc(a, 'peer_outbox')} is not {wb}'s peer_inbox "
                     f"{loc(b, 'peer_inbox')}")
        peer_ids = {k.get("id") for k in dig(a, "trust", "peer") or []}
        if dig(b, "signing_key", "id") not in peer_ids:
            fail(wa, f"trust.peer does not list {wb}'s signing key "
                     f"{dig(b, 'signing_key', 'id')!r}")
    # Each server writes its sum parts to its own bucket (the portal reads both), so
    # a server writing into its peer's storage is a mistake.
    for a, wa, b in ((c0, w0, c1), (c1, w1, c0)):
        theirs = {loc(b, k) for k in ("ingestion", "own", "peer_inbox", "sum_parts")}
        if loc(a, "sum_parts") in theirs:
            fail(wa, f"sum_parts {loc(a, 'sum_parts')} is one of the peer's own locations")


def policy_check(files, crontab_text):
    """Every policy failure, as `where: message` strings."""
    failures = []

    def fail(where, message):
        failures.append(f"{where}: {message}")

    objects = {}
    for path, docs in files.items():
        for doc in docs:
            meta = doc.get("metadata") or {}
            objects[(doc.get("kind"), meta.get("namespace"), meta.get("name"))] = doc

    services = [d for d in objects.values() if d.get("kind") == "Service"]
    configs, pods = [], 0
    for path, docs in files.items():
        if not docs:
            fail(rel(path), "no Kubernetes objects in the file")
        namespaces = {(d.get("metadata") or {}).get("name") for d in docs
                      if d.get("kind") == "Namespace"}
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
                fail(rel(path), "a document without kind/apiVersion (templates are not "
                                "allowed here: plain Kubernetes objects only)")
                continue
            where = describe(path, doc)
            kind = doc["kind"]
            meta = doc.get("metadata") or {}
            namespace = meta.get("namespace")
            if kind == "Secret":
                fail(where, "Secrets must not be shipped in the manifests; create them with "
                            "kubectl create secret (jobs/README.md)")
            if kind not in CLUSTER_SCOPED and not namespace:
                fail(where, "metadata.namespace must be set")
            if namespaces and kind not in CLUSTER_SCOPED and namespace not in namespaces:
                fail(where, f"namespace {namespace!r} is not the file's Namespace "
                            f"{sorted(namespaces)}")
            if kind == "ServiceAccount":
                if not (meta.get("annotations") or {}).get(IRSA_ANNOTATION):
                    fail(where, f"annotation {IRSA_ANNOTATION} (IRSA role) must be set")
                if doc.get("automountServiceAccountToken") is not False:
                    fail(where, "automountServiceAccountToken must be false")
            if kind == "CronJob":
                check_cronjob(where, doc, fail)
            spec_path = POD_SPEC_PATHS.get(kind)
            if not spec_path:
                continue
            pod = dig(doc, *spec_path)
            if not isinstance(pod, dict):
                fail(where, "no pod template")
                continue
            pods += 1
            claims = [dig(t, "metadata", "name")
                      for t in dig(doc, "spec", "volumeClaimTemplates") or []]
            containers = check_pod(where, pod, fail, claims)
            sa = pod.get("serviceAccountName")
            if not sa or ("ServiceAccount", namespace, sa) not in objects:
                fail(where, f"serviceAccountName {sa!r} is not a ServiceAccount defined in "
                            f"namespace {namespace}")
            if kind in ("Job", "CronJob"):
                job = doc["spec"] if kind == "Job" else dig(doc, "spec", "jobTemplate", "spec")
                check_job_spec(where, job, containers, kind == "CronJob", fail)
            for c in containers:
                if divvi_subcommand(c)[0] == "serve":
                    check_upload_server(f"{where}: container {c.get('name', '?')}", doc, pod,
                                        c, services, fail)
            for c in containers:
                config = check_config(f"{where}: container {c.get('name', '?')}", c, pod,
                                      objects, namespace, fail)
                if config is not None:
                    configs.append((where, config))
    check_server_pair(configs, fail)
    if pods == 0:
        fail(rel(MANIFESTS), "no pod templates found")
    failures += crontab_check(crontab_text)
    return failures, pods


# --- crontab ---------------------------------------------------------------------------

ENV_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")


def crontab_uses(text):
    """(line, subcommand, args, flocked, logged) for every divvi command; env names."""
    uses, env = [], []
    for n, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = ENV_LINE.match(line)
        if m:
            env.append((n, m.group(1)))
            continue
        # /etc/cron.d format: five time fields (or one @keyword), the user, the command.
        words = shlex.split(line, comments=True)
        if not words:
            continue
        words = words[2:] if words[0].startswith("@") else words[6:]
        for i, w in enumerate(words):
            if posixpath.basename(w) == "divvi" and i + 1 < len(words) \
                    and not words[i + 1].startswith("-"):
                args = []
                for a in words[i + 2:]:
                    if a[:1] in (">", "|", "&", ";") or a[:2] in ("1>", "2>"):
                        break
                    args.append(a)
                flocked = "flock" in words[:i] and ("-n" in words[:i] or "--nonblock" in words[:i])
                logged = any(a.startswith(">>") or a == ">>" for a in words[i:])
                uses.append((n, words[i + 1], args, flocked, logged))
                break
    return uses, env


def crontab_check(text):
    failures = []
    if text is None:
        return [f"{rel(CRONTAB)}: missing"]
    uses, _ = crontab_uses(text)
    subs = {u[1] for u in uses}
    for sub in SCHEDULED_SUBCOMMANDS - subs:
        failures.append(f"{rel(CRONTAB)}: no line runs divvi {sub}")
    for n, sub, args, flocked, logged in uses:
        if not flocked:
            failures.append(f"{rel(CRONTAB)}:{n}: divvi {sub} must run under flock -n")
        if not logged:
            failures.append(f"{rel(CRONTAB)}:{n}: divvi {sub} output must be appended to "
                            "a log file (>>)")
        if sub in SCHEDULED_SUBCOMMANDS and "--pending" not in args:
            failures.append(f"{rel(CRONTAB)}:{n}: divvi {sub} must pass --pending")
    return failures


# --- flags against a divvi binary ------------------------------------------------------

def divvi_uses(files, crontab_text):
    """(where, subcommand, args, DIVVI_* env names) for everything that runs divvi."""
    out = []
    for path, docs in files.items():
        for doc in docs:
            spec_path = POD_SPEC_PATHS.get(doc.get("kind"))
            pod = dig(doc, *spec_path) if spec_path else None
            if not isinstance(pod, dict):
                continue
            for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
                sub, args = divvi_subcommand(c)
                if sub:
                    envs = [n for n in env_of(c) if n and n.startswith("DIVVI_")]
                    out.append((f"{describe(path, doc)}: container {c.get('name')}",
                                sub, args, envs))
    uses, env = crontab_uses(crontab_text)
    envs = [name for _, name in env if name.startswith("DIVVI_")]
    for n, sub, args, _, _ in uses:
        out.append((f"{rel(CRONTAB)}:{n}", sub, args, envs))
    return out


FLAG = re.compile(r"--[A-Za-z0-9][A-Za-z0-9-]*")


def flag_check(uses, help_for):
    """`help_for(sub)` is the help text of `divvi sub` (with the global help)."""
    failures = []
    for where, sub, args, envs in uses:
        text = help_for(sub)
        if text is None:
            failures.append(f"{where}: `divvi {sub} --help` failed: no such subcommand?")
            continue
        known = set(FLAG.findall(text))
        for a in args:
            if a.startswith("--"):
                name = a.split("=", 1)[0]
                if name not in known:
                    failures.append(f"{where}: divvi {sub} has no flag {name} "
                                    f"(not in `divvi {sub} --help`)")
        for name in envs:
            if name not in text:
                failures.append(f"{where}: env {name} is not mentioned in `divvi {sub} "
                                "--help` or `divvi --help`: divvi would ignore it")
    return failures


def binary_help(binary):
    cache = {}

    def run(args):
        proc = subprocess.run([binary] + args, capture_output=True, text=True,
                              env=dict(os.environ, NO_COLOR="1"))
        return proc.stdout + proc.stderr if proc.returncode == 0 else None

    def help_for(sub):
        if sub not in cache:
            own = run([sub, "--help"])
            cache[sub] = None if own is None else own + "\n" + (run(["--help"]) or "")
        return cache[sub]
    return help_for


# --- self-test -------------------------------------------------------------------------

def find_doc(files, kind, predicate=lambda d: True):
    for docs in files.values():
        for d in docs:
            if d.get("kind") == kind and predicate(d):
                return d
    raise SystemExit(f"self-test: no {kind} to mutate in the manifests")


def intake_cronjob(files):
    return find_doc(files, "CronJob", lambda d: any(
        divvi_subcommand(c)[0] == "intake"
        for c in dig(d, "spec", "jobTemplate", "spec", "template", "spec", "containers") or []))


def aggregate_cronjob(files):
    return find_doc(files, "CronJob", lambda d: any(
        divvi_subcommand(c)[0] == "aggregate"
        for c in dig(d, "spec", "jobTemplate", "spec", "template", "spec", "containers") or []))


def passes_cronjob(files):
    return find_doc(files, "CronJob", lambda d: any(
        divvi_subcommand(c)[0] == "passes"
        for c in dig(d, "spec", "jobTemplate", "spec", "template", "spec", "containers") or []))


def pod_of(cronjob):
    return dig(cronjob, "spec", "jobTemplate", "spec", "template", "spec")


def first_container(cronjob):
    return pod_of(cronjob)["containers"][0]


def set_env(container, name, value):
    for e in container.setdefault("env", []):
        if e.get("name") == name:
            e["value"] = value
            return
    container["env"].append({"name": name, "value": value})


def drop_env(container, name):
    container["env"] = [e for e in container.get("env") or [] if e.get("name") != name]


def mutations():
    """(what is broken, how, a substring the failure must contain)."""
    def m_ro(f):
        del first_container(intake_cronjob(f))["securityContext"]["readOnlyRootFilesystem"]

    def m_shard(f):
        set_env(first_container(intake_cronjob(f)), "DIVVI_SHARD_COUNT", "3")

    def m_parallel(f):
        dig(intake_cronjob(f), "spec", "jobTemplate", "spec")["parallelism"] = 2

    def m_not_indexed(f):
        del dig(intake_cronjob(f), "spec", "jobTemplate", "spec")["completionMode"]

    def m_no_shard_env(f):
        drop_env(first_container(intake_cronjob(f)), "DIVVI_SHARD_COUNT")

    def m_shard_flag(f):
        first_container(intake_cronjob(f))["args"] += ["--shard", "0/4"]

    def m_root(f):
        c = first_container(aggregate_cronjob(f))
        c["securityContext"]["runAsUser"] = 0
        pod_of(aggregate_cronjob(f))["securityContext"]["runAsUser"] = 0

    def m_nonroot(f):
        first_container(aggregate_cronjob(f))["securityContext"]["runAsNonRoot"] = False

    def m_escalation(f):
        first_container(aggregate_cronjob(f))["securityContext"]["allowPrivilegeEscalation"] = True

    def m_caps(f):
        sc = first_container(intake_cronjob(f))["securityContext"]
        sc["capabilities"] = {"add": ["NET_ADMIN"]}

    def m_limits(f):
        del first_container(aggregate_cronjob(f))["resources"]["limits"]

    def m_latest(f):
        first_container(intake_cronjob(f))["image"] = "ghcr.io/divvi/divvi:latest"

    def m_untagged(f):
        first_container(intake_cronjob(f))["image"] = "ghcr.io/divvi/divvi"

    def m_secret_rw(f):
        for m in first_container(intake_cronjob(f))["volumeMounts"]:
            if m["name"] == "keys":
                m["readOnly"] = False

    def m_secret_mode(f):
        for v in pod_of(intake_cronjob(f))["volumes"]:
            if "secret" in v:
                v["secret"]["defaultMode"] = 0o644

    def m_concurrency(f):
        aggregate_cronjob(f)["spec"]["concurrencyPolicy"] = "Allow"

    def m_deadline(f):
        del dig(intake_cronjob(f), "spec", "jobTemplate", "spec")["activeDeadlineSeconds"]

    def m_restart(f):
        pod_of(intake_cronjob(f))["restartPolicy"] = "Always"

    def m_tmp(f):
        c = first_container(aggregate_cronjob(f))
        c["volumeMounts"] = [m for m in c["volumeMounts"] if m["mountPath"] != "/tmp"]

    def m_secret_obj(f):
        next(iter(f.values())).append({"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "divvi-keys", "namespace": "divvi-pha"}, "stringData": {"k": "v"}})

    def m_key_path(f):
        cm = find_doc(f, "ConfigMap", lambda d: "server.toml" in d["data"])
        cm["data"]["server.toml"] = cm["data"]["server.toml"].replace(
            'file = "keys/', 'file = "/var/keys/', 1)

    def m_peer(f):
        cm = find_doc(f, "ConfigMap",
                      lambda d: "server_index = 1" in d["data"].get("server.toml", ""))
        cm["data"]["server.toml"] = re.sub(r'(\[locations\.peer_outbox\][^\[]*url = ")[^"]*',
                                           r"\1s3://somewhere-else", cm["data"]["server.toml"])

    def m_token(f):
        pod_of(aggregate_cronjob(f))["automountServiceAccountToken"] = True

    def m_irsa(f):
        del find_doc(f, "ServiceAccount")["metadata"]["annotations"]

    def m_aggregate_parallel(f):
        dig(aggregate_cronjob(f), "spec", "jobTemplate", "spec")["parallelism"] = 2

    def m_passes_parallel(f):
        dig(passes_cronjob(f), "spec", "jobTemplate", "spec")["completions"] = 2

    def m_passes_not_pending(f):
        c = first_container(passes_cronjob(f))
        c["args"] = [a for a in c["args"] if a != "--pending"]

    def m_passes_concurrency(f):
        passes_cronjob(f)["spec"]["concurrencyPolicy"] = "Replace"

    def m_passes_failjob(f):
        for r in rules_of(passes_cronjob(f)):
            if r.get("action") == "FailJob":
                r["onExitCodes"]["containerName"] = "aggregate"

    def rules_of(cronjob):
        return dig(cronjob, "spec", "jobTemplate", "spec", "podFailurePolicy", "rules")

    def m_no_failure_policy(f):
        del dig(aggregate_cronjob(f), "spec", "jobTemplate", "spec")["podFailurePolicy"]

    def m_failjob_other_container(f):
        for r in rules_of(intake_cronjob(f)):
            if r.get("action") == "FailJob":
                r["onExitCodes"]["containerName"] = "divvi"

    def m_failjob_any_container(f):
        for r in rules_of(aggregate_cronjob(f)):
            if r.get("action") == "FailJob":
                del r["onExitCodes"]["containerName"]

    def m_exit2_counted(f):
        rules_of(intake_cronjob(f)).insert(0, {"action": "Count", "onExitCodes": {
            "containerName": "intake", "operator": "NotIn", "values": [0, 3]}})

    def m_disruption_counted(f):
        rules = rules_of(aggregate_cronjob(f))
        rules[:] = [r for r in rules if "onPodConditions" not in r]

    def upload_set(f):
        return find_doc(f, "StatefulSet")

    def upload_container(f):
        return dig(upload_set(f), "spec", "template", "spec", "containers")[0]

    def m_journal_emptydir(f):
        pod = dig(upload_set(f), "spec", "template", "spec")
        pod["volumes"].append({"name": "scratch", "emptyDir": {}})
        for m in upload_container(f)["volumeMounts"]:
            if m["name"] == "journal":
                m["name"] = "scratch"

    def m_upload_deployment(f):
        upload_set(f)["kind"] = "Deployment"

    def m_claims_deleted(f):
        upload_set(f)["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] = "Delete"

    def m_no_readiness(f):
        del upload_container(f)["readinessProbe"]

    def m_short_grace(f):
        dig(upload_set(f), "spec", "template", "spec")["terminationGracePeriodSeconds"] = 10

    def m_loopback(f):
        args = upload_container(f)["args"]
        args[args.index("--listen") + 1] = "127.0.0.1:8080"

    def m_service_port(f):
        svc = find_doc(f, "Service", lambda d: dig(d, "spec", "clusterIP") != "None")
        svc["spec"]["ports"][0]["targetPort"] = "web"

    return [
        ("journal on an emptyDir", m_journal_emptydir, "must be the mount of a volumeClaimTemplate"),
        ("upload server in a Deployment", m_upload_deployment, "must run in a StatefulSet"),
        ("journal claims deleted on scale-down", m_claims_deleted, "whenScaled must be Retain"),
        ("no readiness probe", m_no_readiness, "readinessProbe must be an httpGet of /readyz"),
        ("grace period shorter than the drain", m_short_grace, "terminationGracePeriodSeconds is 10"),
        ("serve on loopback", m_loopback, "is loopback"),
        ("Service targets an unnamed port", m_service_port, "targets port 'web'"),
        ("readOnlyRootFilesystem dropped", m_ro, "readOnlyRootFilesystem"),
        ("DIVVI_SHARD_COUNT != completions", m_shard, "DIVVI_SHARD_COUNT is '3'"),
        ("parallelism != completions", m_parallel, "parallelism (2) must equal"),
        ("intake not Indexed", m_not_indexed, "Indexed Job"),
        ("DIVVI_SHARD_COUNT missing", m_no_shard_env, "DIVVI_SHARD_COUNT must be set"),
        ("--shard in an Indexed Job", m_shard_flag, "--shard must not be passed"),
        ("runAsUser 0", m_root, "runAsUser must be a non-zero number"),
        ("runAsNonRoot false", m_nonroot, "runAsNonRoot must be true"),
        ("privilege escalation", m_escalation, "allowPrivilegeEscalation"),
        ("capabilities added, none dropped", m_caps, "capabilities.drop must contain ALL"),
        ("limits dropped", m_limits, "resources.limits.cpu"),
        (":latest image", m_latest, "uses :latest"),
        ("untagged image", m_untagged, "has no tag"),
        ("Secret mounted writable", m_secret_rw, "must be mounted readOnly"),
        ("Secret defaultMode 0644", m_secret_mode, "defaultMode is 420"),
        ("concurrencyPolicy Allow", m_concurrency, "concurrencyPolicy must be Forbid"),
        ("activeDeadlineSeconds dropped", m_deadline, "activeDeadlineSeconds must be set"),
        ("restartPolicy Always", m_restart, "restartPolicy must be Never or OnFailure"),
        ("/tmp emptyDir unmounted", m_tmp, "TMPDIR=/tmp must be a writable emptyDir"),
        ("a Secret object shipped", m_secret_obj, "Secrets must not be shipped"),
        ("key file outside the Secret", m_key_path, "is not inside a mounted Secret"),
        ("peer_outbox not the peer's inbox", m_peer, "is not server 0's peer_inbox"),
        ("API token mounted", m_token, "automountServiceAccountToken must be false"),
        ("IRSA annotation dropped", m_irsa, IRSA_ANNOTATION),
        ("two aggregate pods", m_aggregate_parallel, "must be a single pod"),
        ("two passes pods", m_passes_parallel, "a passes Job must be a single pod"),
        ("scheduled passes without --pending", m_passes_not_pending,
         "a scheduled passes must pass --pending"),
        ("passes runs may overlap", m_passes_concurrency,
         "concurrencyPolicy must be Forbid, not 'Replace'"),
        ("passes FailJob rule names another container", m_passes_failjob,
         "rule 0 names no container of the pod: 'aggregate'"),
        ("podFailurePolicy dropped", m_no_failure_policy, "podFailurePolicy must be set"),
        ("FailJob rule names another container", m_failjob_other_container,
         "rule 0 names no container of the pod"),
        ("FailJob rule names no container", m_failjob_any_container,
         "must name the container (containerName: aggregate)"),
        ("exit 2 counted as a retry by an earlier rule", m_exit2_counted,
         "exit code 2 of container intake is Count, not FailJob"),
        ("evictions counted as retries", m_disruption_counted,
         "must Ignore pods with the DisruptionTarget condition"),
    ]


def self_test(kv_cmd, versions):
    files = load_manifests()
    crontab_text = CRONTAB.read_text(encoding="utf-8") if CRONTAB.exists() else None
    problems = []

    baseline, _ = policy_check(files, crontab_text)
    if baseline:
        problems.append("the unmodified manifests fail the policy check:\n  "
                        + "\n  ".join(baseline))

    caught = 0
    for what, mutate, expected in mutations():
        broken = copy.deepcopy(files)
        mutate(broken)
        failures, _ = policy_check(broken, crontab_text)
        if any(expected in f for f in failures):
            caught += 1
        else:
            problems.append(f"not caught: {what} (expected a failure containing "
                            f"{expected!r}; got {failures or 'none'})")

    # The crontab: a divvi line without flock; no passes line.
    if crontab_text is not None:
        lines = [ln.replace("flock -n", "nice") if " intake " in ln and "flock" in ln else ln
                 for ln in crontab_text.splitlines()]
        if any("must run under flock -n" in f for f in crontab_check("\n".join(lines))):
            caught += 1
        else:
            problems.append("not caught: crontab intake line without flock -n")
        lines = [ln for ln in crontab_text.splitlines() if " passes " not in ln]
        if any("no line runs divvi passes" in f for f in crontab_check("\n".join(lines))):
            caught += 1
        else:
            problems.append("not caught: crontab without a passes line")

    # Flags: a help text without --grace and without DIVVI_PUSHGATEWAY.
    fake = {"intake": "--config --aggregation --pending --lookback --incomplete-after "
                      "--shard DIVVI_SHARD_COUNT DIVVI_LOG_FORMAT DIVVI_METRICS_PORT "
                      "DIVVI_PUSHGATEWAY",
            "aggregate": "--config --aggregation --pending --period DIVVI_SHARD_COUNT "
                         "DIVVI_LOG_FORMAT DIVVI_METRICS_PORT",
            "passes": "--config --aggregation --pending DIVVI_LOG_FORMAT DIVVI_METRICS_PORT "
                      "DIVVI_PUSHGATEWAY DIVVI_EXIT_CODES"}
    flag_failures = flag_check(divvi_uses(files, crontab_text), fake.get)
    for expected in ("has no flag --grace", "env DIVVI_PUSHGATEWAY is not mentioned"):
        if any(expected in f for f in flag_failures):
            caught += 1
        else:
            problems.append(f"not caught: flag check missing {expected!r}")

    # kubernetes-validate --strict on disk: a misspelt field, and an unknown kind (which
    # kubernetes-validate only warns about).
    if kv_cmd is None:
        problems.append("kubernetes-validate is not installed")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for what, broken_text, expected in (
                ("misspelt field", "readOnlyRootFilesytem: true", "was unexpected"),
                ("unknown kind", "kind: CronJobs", "Couldn't find schema"),
            ):
                original = broken_text.replace("Filesytem", "Filesystem").replace(
                    "CronJobs", "CronJob")
                src = next(p for p in files if original in p.read_text(encoding="utf-8"))
                text = src.read_text(encoding="utf-8")
                path = Path(tmp) / "broken.yaml"
                path.write_text(text.replace(original, broken_text), encoding="utf-8")
                failures, _ = run_kubernetes_validate(kv_cmd, [path], versions, 0)
                if any(expected in f for f in failures):
                    caught += 1
                else:
                    problems.append(f"not caught by kubernetes-validate: {what} "
                                    f"(got {failures or 'no failure'})")

    if problems:
        for p in problems:
            print(f"SELF-TEST FAIL: {p}")
        return 1
    print(f"check.py self-test: {caught} broken variants, every one caught")
    return 0


# --- main ------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("divvi", nargs="?", help="a divvi binary: check flags against it")
    parser.add_argument("--divvi-bin", help="same as the positional argument")
    parser.add_argument("--self-test", action="store_true",
                        help="break manifests in memory and assert every break is caught")
    args = parser.parse_args()

    kv_cmd = kubernetes_validate_command()
    kv_version, newest = kubernetes_validate_info(kv_cmd) if kv_cmd else (None, None)
    if kv_cmd is None:
        sys.exit("FAIL: kubernetes-validate not found; install it with\n"
                 "  python3 -m pip install 'kubernetes-validate>=1.28'")
    if newest is None or version_key(newest) < version_key(MIN_KUBERNETES):
        sys.exit(f"FAIL: kubernetes-validate {kv_version} ships schemas up to {newest}, "
                 f"older than Kubernetes {MIN_KUBERNETES}; upgrade it: "
                 "python3 -m pip install -U kubernetes-validate")
    versions = sorted({MIN_KUBERNETES, newest}, key=version_key)

    if args.self_test:
        return self_test(kv_cmd, versions)

    files = load_manifests()
    if not files:
        sys.exit(f"FAIL: no YAML files under {rel(MANIFESTS)}")
    crontab_text = CRONTAB.read_text(encoding="utf-8") if CRONTAB.exists() else None
    n_objects = sum(len(d) for d in files.values())

    failures, passes = run_kubernetes_validate(kv_cmd, list(files), versions,
                                               n_objects * len(versions))
    policy_failures, pods = policy_check(files, crontab_text)
    failures += policy_failures

    binary = args.divvi or args.divvi_bin or os.environ.get("DIVVI_BIN")
    if binary:
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            failures.append(f"divvi binary {binary} is not an executable file")
            flags_line = f"flags: not checked ({binary} is not executable)"
        else:
            uses = divvi_uses(files, crontab_text)
            flag_failures = flag_check(uses, binary_help(binary))
            failures += flag_failures
            flags_line = (f"flags: {len(uses)} divvi invocations checked against "
                          f"`{binary} SUBCOMMAND --help`")
    else:
        flags_line = ("flags: skipped (no divvi binary given: pass a path, --divvi-bin "
                      "PATH or DIVVI_BIN=PATH to check every --flag against --help)")

    for f in failures:
        print(f"FAIL {f}")
    print(f"check.py: {len(files)} files, {n_objects} objects, {pods} pod templates "
          f"under {rel(MANIFESTS)}, and {rel(CRONTAB)}")
    print(f"  kubernetes-validate {kv_version} --strict, Kubernetes "
          f"{' and '.join(versions)}: {passes} object checks passed")
    print(f"  policy: {len(policy_failures)} failures")
    print(f"  {flags_line}")
    if failures:
        print(f"check.py: FAILED, {len(failures)} failure{'s' if len(failures) > 1 else ''}"
              " (listed above)")
        return 1
    print("check.py: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
