#!/usr/bin/env python3
"""Each module's variable validations, run by Terraform itself.

A module's variables.tf needs no provider, so it can be planned on its own, offline:
each module's variables are copied to an empty root, `terraform init` and
`terraform plan` run with good values (which must pass), then with one bad value at a
time (which must fail with that variable's message). This catches validations that
never fire, fire on good input, or that Terraform refuses to load.

Run: python terraform/tests/test_variables.py [--terraform PATH]
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MODULES = Path(__file__).resolve().parent.parent / "modules"
ROLE = "arn:aws:iam::222222222222:role/peer-job"
DIGEST = "@sha256:" + "0" * 64

GOOD = {
    "divvi-server": {
        "name": "my-pha-divvi",
        "server_index": 0,
        "instance": "my-pha",
        "aggregations": ["exposure-notifications"],
        "peer_job_role_arn": ROLE,
        "peer_inbox_bucket": "my-fac-divvi-peer-inbox",
        "peer_inbox_writer_role_arn": ROLE,
        "signing_key_id": "server0-signing",
        "packet_key_ids": ["server0-packet"],
        "trusted_ingestor_keys": [{"id": "ingestor-signing", "public_key": "MFkw"}],
        "trusted_peer_keys": [{"id": "server1-signing", "public_key": "MFkw"}],
        "trusted_portal_keys": [{"id": "portal-signing", "public_key": "MFkw"}],
        "eks_oidc_provider_arn": "arn:aws:iam::111111111111:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/X",
        "eks_oidc_issuer": "https://oidc.eks.us-west-2.amazonaws.com/id/X",
        "namespace": "divvi-pha",
        "image": "ghcr.io/divvi/divvi:0.1.0" + DIGEST,
    },
    "private-bucket": {
        "name": "my-pha-divvi-own",
        "kms_key_arn": "arn:aws:kms:us-west-2:111111111111:key/k",
        "retention_days": 30,
        "short_lived": [{"prefix": "rounds/", "days": 2}, {"prefix": "stash/", "days": 30}],
        "access_log_bucket": "my-pha-divvi-access-logs",
        "access_log_prefix": "my-pha-divvi-own/",
    },
    "bucket-access": {
        "name": "my-pha-divvi-portal",
        "access": "collect",
        "principal_arns": ["arn:aws:iam::555555555555:role/divvi-portal"],
        "bucket_arn": "arn:aws:s3:::my-pha-divvi-sum-parts",
        "kms_key_arn": "arn:aws:kms:us-west-2:111111111111:key/k",
    },
    "divvi-ingestor": {
        "name": "my-app-divvi",
        "servers": [
            {"ingestion_bucket": "my-pha-divvi-ingestion", "region": "us-west-2",
             "put_role_arn": "arn:aws:iam::111111111111:role/my-pha-divvi-ingestor",
             "packet_key_id": "server0-packet", "packet_public_key": "BHeQ"},
            {"ingestion_bucket": "my-fac-divvi-ingestion", "region": "us-west-2",
             "put_role_arn": ROLE, "packet_key_id": "server1-packet", "packet_public_key": "BLbn"},
        ],
        "task_json": "{\"task_id\": \"x\"}",
        "eks_oidc_provider_arn": "arn:aws:iam::333333333333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/X",
        "eks_oidc_issuer": "https://oidc.eks.us-west-2.amazonaws.com/id/X",
        "image": "ghcr.io/divvi/divvi:0.1.0" + DIGEST,
    },
}

# (module, variable, bad value, words the failure must contain)
BAD = [
    ("divvi-server", "name", "My_PHA", "The name must be"),
    ("divvi-server", "server_index", 2, "server_index must be 0"),
    ("divvi-server", "instance", "bad/instance", "The instance must be"),
    ("divvi-server", "aggregations", [], "aggregations must be non-empty"),
    ("divvi-server", "aggregations", ["a" * 37], "at most 52 characters"),
    ("divvi-server", "peer_job_role_arn", "arn:aws:iam::222222222222:user/x", "must be an IAM role ARN"),
    ("divvi-server", "packet_key_ids", [], "At least one packet key id"),
    ("divvi-server", "packet_key_scheme", "rsa", "packet_key_scheme must be"),
    ("divvi-server", "trusted_peer_keys", [], "At least one trusted peer key"),
    ("divvi-server", "min_clients", 0, "min_clients must be"),
    ("divvi-server", "retention_days", {"ingestion": 30, "own": 10, "peer_inbox": 30, "sum_parts": 90, "access_logs": 400},
     "replay set must outlive"),
    ("divvi-server", "retention_days", {"ingestion": 0, "own": 10, "peer_inbox": 30, "sum_parts": 90, "access_logs": 400},
     "Each retention is a whole number"),
    ("divvi-server", "kms_deletion_window_days", 3, "between 7 and 30"),
    ("divvi-server", "round_state_days", 0, "round_state_days must be"),
    ("divvi-server", "eks_oidc_provider_arn", "arn:aws:iam::111111111111:role/x", "OIDC provider ARN"),
    ("divvi-server", "namespace", "Divvi_PHA", "DNS label"),
    ("divvi-server", "image", "ghcr.io/divvi/divvi:latest", "pinned by digest"),
    ("divvi-server", "intake_parallelism", 0, "intake_parallelism must be"),
    ("divvi-server", "intake_parallelism", 2.5, "intake_parallelism must be"),
    ("divvi-server", "intake_lookback", "3 days", "intake_lookback must be"),
    ("divvi-server", "aggregation_period", "1w", "aggregation_period must be"),
    ("divvi-server", "job_history_days", 90, "job_history_days must be"),
    ("divvi-server", "metrics_port", 80, "metrics_port must be"),
    ("private-bucket", "name", "Bad_Bucket", "A bucket name is"),
    ("private-bucket", "kms_key_arn", "alias/x", "KMS key ARN"),
    ("private-bucket", "retention_days", 0, "retention_days must be"),
    ("private-bucket", "short_lived", [{"prefix": "", "days": 2}], "prefix must not be empty"),
    ("private-bucket", "short_lived", [{"prefix": "rounds/", "days": 0.5}], "whole number"),
    ("private-bucket", "short_lived", [{"prefix": "stash/", "days": 2}, {"prefix": "stash/", "days": 3}], "may appear once"),
    ("bucket-access", "principal_arns", ["arn:aws:iam::444444444444:root"], "must be IAM role ARNs"),
    ("bucket-access", "principal_arns", [], "must be IAM role ARNs"),
    ("bucket-access", "principal_arns", ["*"], "must be IAM role ARNs"),
    ("bucket-access", "bucket_arn", "my-pha-divvi-ingestion", "S3 bucket ARN"),
    ("bucket-access", "bucket_arn", "arn:aws:s3:::Bad Bucket", "S3 bucket ARN"),
    ("bucket-access", "name", "x" * 65, "valid IAM role name"),
    ("bucket-access", "access", "write", "access must be"),
    ("bucket-access", "kms_key_arn", "alias/divvi", "KMS key ARN"),
    ("divvi-ingestor", "servers", [], "Exactly two servers"),
    ("divvi-ingestor", "servers", [
        {"ingestion_bucket": "a", "region": "r", "put_role_arn": "arn:aws:iam::1:user/x",
         "packet_key_id": "k", "packet_public_key": "p"}] * 2, "must be an IAM role ARN"),
    ("divvi-ingestor", "task_json", "not json", "JSON text of the task file"),
    ("divvi-ingestor", "image", "ghcr.io/divvi/divvi:latest", "pinned by digest"),
    ("divvi-ingestor", "replicas", 0, "At least one replica"),
    ("divvi-ingestor", "max_pending_segments", 0, "At least one segment may wait"),
    ("divvi-ingestor", "packet_key_scheme", "rsa", "packet_key_scheme must be"),
    ("divvi-ingestor", "namespace", "Divvi_Ingestor", "DNS label"),
]


def plan(terraform, root, values):
    (root / "values.auto.tfvars.json").write_text(json.dumps(values))
    return subprocess.run([terraform, "plan", "-input=false", "-no-color"], cwd=root, capture_output=True, text=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terraform", default="terraform")
    a = parser.parse_args()
    terraform = a.terraform if "/" not in a.terraform else str(Path(a.terraform).resolve())
    failures, ran = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        roots = {}
        for module, values in GOOD.items():
            root = Path(tmp) / module
            root.mkdir()
            shutil.copy(MODULES / module / "variables.tf", root / "variables.tf")
            init = subprocess.run([terraform, "init", "-input=false", "-no-color"], cwd=root, capture_output=True, text=True)
            if init.returncode != 0:
                failures.append(f"{module}: terraform init refuses its variables.tf:\n{init.stderr.strip()}")
                continue
            done = plan(terraform, root, values)
            ran += 1
            if done.returncode != 0:
                failures.append(f"{module}: good values refused:\n{done.stderr.strip()}")
            roots[module] = root
        for module, variable, bad, words in BAD:
            if module not in roots:
                continue
            done = plan(terraform, roots[module], dict(GOOD[module], **{variable: bad}))
            ran += 1
            flat = " ".join(done.stderr.split())
            if done.returncode == 0 or words not in flat:
                failures.append(f"{module}: {variable} = {bad!r} was not refused with {words!r}: {flat[:300]}")
    for f in failures:
        print(f"FAILED: {f}")
    if failures:
        sys.exit(1)
    print(f"variables: {len(GOOD)} modules' good values accepted, {len(BAD)} bad values refused by name ({ran} plans)")


if __name__ == "__main__":
    main()
