#!/usr/bin/env python3
"""Who may do what: the IAM grants of the Terraform modules, evaluated.

Reads every `aws_iam_policy_document` of the modules as written (python-hcl2), fills
in the references the way the two-server example wires them, and evaluates requests
the way AWS does for them: an explicit Deny wins, else some Allow must match action,
resource, principal and every condition. An S3 operation on an SSE-KMS bucket needs
both the S3 action and the KMS call S3 makes for it (GenerateDataKey to write, Decrypt
to read or to finish a multipart upload), with S3's KMS request context.

Then asserts issue 7's grants, including what must be denied. A reference the test
does not model, or a grant outside the modelled documents (a managed policy
attachment, say), fails the test rather than going unchecked. `--self-test` widens
the documents in ways that must be caught and checks that each one is.

Run: python terraform/tests/test_iam.py [--self-test]   (needs python-hcl2)
"""

import copy
import re
import sys
from pathlib import Path

import hcl2

MODULES = Path(__file__).resolve().parent.parent / "modules"
REGION = "us-west-2"
S3_SERVICE = f"s3.{REGION}.amazonaws.com"
ACCOUNT = {"pha": "111111111111", "facilitator": "222222222222"}
INGESTOR = "arn:aws:iam::444444444444:role/app-backend"
PORTAL = "arn:aws:iam::555555555555:role/portal"
STRANGER = "arn:aws:iam::999999999999:role/someone"
EXTERNAL_ID = "ingestor-external-id"
STRANGER_KEY = "arn:aws:kms:us-west-2:999999999999:key/someone-elses"


def account_root(arn):
    return f"arn:aws:iam::{arn.split(':')[4]}:root"


def neighbour(arn):
    """Another role in the same account as arn."""
    return arn.rsplit("/", 1)[0] + "/someone-else"


# --- Reading the documents --------------------------------------------------------------


def unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def read_module(name):
    """All blocks of a module's .tf files: {(kind, type, name): body}; module calls are
    ("module", name, "") and locals ("local", name, "")."""
    blocks = {}
    for tf in sorted((MODULES / name).glob("*.tf")):
        with tf.open() as f:
            parsed = hcl2.load(f)
        for kind in ("data", "resource"):
            for entry in parsed.get(kind, []):
                for rtype, named in entry.items():
                    for rname, body in named.items():
                        blocks[(kind, unquote(rtype), unquote(rname))] = body
        for entry in parsed.get("module", []):
            for mname, body in entry.items():
                blocks[("module", unquote(mname), "")] = body
        for entry in parsed.get("locals", []):
            for key, value in entry.items():
                blocks[("local", key, "")] = value
    return blocks


class Unmodelled(Exception):
    pass


def resolve(raw, env):
    """A string or list from HCL, with ${...} references looked up in env."""
    if isinstance(raw, list):
        out = []
        for item in raw:
            value = resolve(item, env)
            out.extend(value if isinstance(value, list) else [value])
        return out
    text = unquote(raw)
    whole = re.fullmatch(r"\$\{([^}]*)\}", text)
    if whole:
        if whole.group(1) not in env:
            raise Unmodelled(f"a policy refers to `{whole.group(1)}`, which this test does not model")
        return env[whole.group(1)]

    def one(match):
        if match.group(1) not in env:
            raise Unmodelled(f"a policy refers to `{match.group(1)}`, which this test does not model")
        return str(env[match.group(1)])

    return re.sub(r"\$\{([^}]*)\}", one, text)


def statements(body, env):
    """The statements of one aws_iam_policy_document, references resolved."""
    out = []
    for st in body.get("statement", []):
        conditions = [
            (resolve(c["test"], env), resolve(c["variable"], env), resolve(c["values"], env))
            for c in st.get("condition", [])
        ]
        for dyn in st.get("dynamic", []):
            for label, block in dyn.items():
                if unquote(label) != "condition":
                    raise Unmodelled(f"dynamic {label} blocks are not modelled")
                items = resolve(block["for_each"], env)
                for item in items:
                    inner = dict(env, **{"condition.value": item})
                    for c in block["content"]:
                        conditions.append(
                            (resolve(c["test"], inner), resolve(c["variable"], inner), resolve(c["values"], inner))
                        )
        out.append(
            {
                "sid": resolve(st.get("sid", '""'), env),
                "effect": resolve(st.get("effect", '"Allow"'), env),
                "actions": resolve(st.get("actions", []), env),
                "resources": resolve(st.get("resources", []), env),
                "principals": [(resolve(p["type"], env), resolve(p["identifiers"], env)) for p in st.get("principals", [])],
                "conditions": conditions,
            }
        )
        unknown = set(st) - {"sid", "effect", "actions", "resources", "principals", "condition", "dynamic", "__is_block__", "__comments__"}
        if unknown:
            raise Unmodelled(f"statement keys {sorted(unknown)} are not modelled")
    return out


# --- Evaluation -----------------------------------------------------------------------------


def glob(pattern, value, fold=False):
    if fold:
        pattern, value = pattern.lower(), value.lower()
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value) is not None


def condition_holds(test, key, values, ctx):
    """One condition, with AWS's rules for keys the request lacks: Null tests presence,
    a negated operator holds, any other does not."""
    if test == "Null":
        return (key not in ctx) == (values == ["true"])
    negated = "Not" in test
    if key not in ctx:
        return negated
    actual = str(ctx[key])
    if test in ("StringEquals", "ArnEquals", "StringNotEquals", "ArnNotEquals"):
        return (actual in values) != negated
    if test in ("StringLike", "ArnLike"):
        return any(glob(v, actual) for v in values)
    if test == "Bool":
        return actual.lower() in [v.lower() for v in values]
    if test == "NumericLessThan":
        return any(float(actual) < float(v) for v in values)
    raise Unmodelled(f"condition operator {test} is not modelled")


def principal_matches(principals, who):
    """who: ("AWS", arn) or ("Federated", provider arn) or ("Service", name)."""
    kind, ident = who
    for ptype, ids in principals:
        for pid in ids:
            if ptype == "*" or pid == "*":
                return True
            if ptype != kind:
                continue
            if pid == ident:
                return True
            root = re.fullmatch(r"arn:aws:iam::(\d{12}):root", pid)
            if kind == "AWS" and root and f"::{root.group(1)}:" in ident:
                return True
    return False


def matching(doc, action, resource, ctx, who=None):
    """Effects of the statements of doc that apply to the request."""
    effects = []
    for st in doc:
        if not any(glob(a, action, fold=True) for a in st["actions"]):
            continue
        if st["resources"] and not any(glob(r, resource) for r in st["resources"]):
            continue
        if st["principals"] and (who is None or not principal_matches(st["principals"], who)):
            continue
        if all(condition_holds(t, k, v, ctx) for t, k, v in st["conditions"]):
            effects.append(st["effect"])
    return effects


def decide(docs, action, resource, ctx, who):
    """AWS's rule within one account: a Deny anywhere wins, else any Allow allows."""
    effects = [e for doc in docs for e in matching(doc, action, resource, ctx, who)]
    return "Deny" not in effects and "Allow" in effects


SECURE = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
# A create-only upload: S3 puts the object only if none has its key (divvi's create_new).
CREATE = dict(SECURE, **{"s3:if-none-match": "*"})
DOC_REF = r"\$\{data\.aws_iam_policy_document\.([a-z_]+)\.json\}"
# A heavy-hitters query of the portal, and other keys of the sum-parts bucket.
QUERY_KEY = "my-pha/heavy/202612050000-202612052359.pass3.query"
NOT_QUERY_KEYS = (
    "my-pha/heavy/202612050000-202612052359.pass3.sum_0",
    "my-pha/heavy/202612050000-202612052359.pass3.query.tmp",
    "my-pha/heavy/202612050000-202612052359.pass3.queryx",
    "my-pha/exposure-notifications/202612050000-202612052359.sum_0",
)
# The arguments of modules/bucket-access that its documents use.
ACCESS_ARGS = ("name", "access", "principal_arns", "external_id", "bucket_arn", "kms_key_arn")


# --- The deployment, as the example wires it ------------------------------------------------------


class Deployment:
    """Both servers, their ingestor and portal roles; documents resolved per server."""

    def __init__(self, mutate=None):
        self.server = {s: self._server(s, mutate) for s in ("pha", "facilitator")}

    def _server(self, side, mutate):
        peer = "facilitator" if side == "pha" else "pha"
        name, peer_name = f"{side}-divvi", f"{peer}-divvi"
        server = read_module("divvi-server")
        bucket_names = {k: resolve(v, {"var.name": name}) for k, v in server[("local", "buckets", "")].items()}
        arn = {k: f"arn:aws:s3:::{v}" for k, v in bucket_names.items()}
        key = f"arn:aws:kms:{REGION}:{ACCOUNT[side]}:key/{side}-storage"
        oidc = f"oidc.eks.{REGION}.amazonaws.com/id/{side.upper()}"
        env = {
            "var.name": name,
            "var.namespace": f"divvi-{side}",
            "local.service_account": "divvi",
            "local.oidc_host": oidc,
            "local.s3_service": S3_SERVICE,
            "var.eks_oidc_provider_arn": f"arn:aws:iam::{ACCOUNT[side]}:oidc-provider/{oidc}",
            "aws_kms_key.storage.arn": key,
            "data.aws_partition.current.partition": "aws",
            "data.aws_caller_identity.current.account_id": ACCOUNT[side],
            "data.aws_region.current.region": REGION,
            "var.peer_job_role_arn": f"arn:aws:iam::{ACCOUNT[peer]}:role/{peer_name}-job",
            "var.peer_inbox_writer_role_arn": f"arn:aws:iam::{ACCOUNT[peer]}:role/{peer_name}-peer-inbox-writer",
            "aws_s3_bucket.access_logs.arn": f"arn:aws:s3:::{name}-access-logs",
        }
        env.update({f"local.bucket_arn.{k}": v for k, v in arn.items()})
        env.update({f"local.objects.{k}": f"{v}/*" for k, v in arn.items()})

        roles = self._roles(server, env, ACCOUNT[side], mutate, "server")
        # The server's own module calls: its buckets (whose policies are modelled below)
        # and the bucket-access role it grants the peer, with its arguments as written.
        for (kind, call, _), body in server.items():
            if kind != "module":
                continue
            source = unquote(body["source"])
            if source == "../bucket-access":
                args = {k: resolve(body[k], env) for k in ACCESS_ARGS if k in body}
                roles[f"server:{call}"] = self._access(args, ACCOUNT[side], mutate)
            elif source != "../private-bucket":
                raise Unmodelled(f"module {call} ({source}) may grant what this test does not model")
        # The ingestor's and the portal's roles, in this server's account as in the example.
        roles["ingestor:ingestor"] = self._access(
            {"name": f"{name}-ingestor", "access": "put", "principal_arns": [INGESTOR],
             "external_id": EXTERNAL_ID, "bucket_arn": arn["ingestion"], "kms_key_arn": key},
            ACCOUNT[side], mutate)
        roles["portal:portal"] = self._access(
            {"name": f"{name}-portal", "access": "collect", "principal_arns": [PORTAL],
             "bucket_arn": arn["sum_parts"], "kms_key_arn": key},
            ACCOUNT[side], mutate)
        # The module's read-only grant, for a portal that asks for no heavy hitters.
        roles["portal:reader"] = self._access(
            {"name": f"{name}-portal-reader", "access": "read", "principal_arns": [PORTAL],
             "bucket_arn": arn["sum_parts"], "kms_key_arn": key},
            ACCOUNT[side], mutate)

        bucket_module = read_module("private-bucket")
        bucket_policy = {
            k: statements(
                self._doc(bucket_module, "bucket", mutate, "bucket"),
                {"aws_s3_bucket.this.arn": v, "var.kms_key_arn": key},
            )
            for k, v in arn.items()
        }
        key_policy = statements(self._doc(server, "key", mutate, "server"), env)
        return {"arn": arn, "key": key, "roles": roles, "bucket_policy": bucket_policy, "key_policy": key_policy}

    def _access(self, args, account, mutate):
        """The one role of modules/bucket-access, given its arguments."""
        external_id = args.get("external_id")
        env = {f"var.{k}": v for k, v in args.items()}
        env.update({
            "local.principal_accounts": sorted({account_root(a) for a in args["principal_arns"]}),
            "var.external_id == null ? [] : [var.external_id]": [] if external_id is None else [external_id],
            "local.s3_service": S3_SERVICE,
        })
        (role,) = self._roles(read_module("bucket-access"), env, account, mutate, "access").values()
        return role

    @staticmethod
    def _doc(blocks, name, mutate, module):
        body = copy.deepcopy(blocks[("data", "aws_iam_policy_document", name)])
        if mutate:
            mutate(module, name, body)
        return body

    def _statements(self, blocks, name, env, mutate, module):
        """A document's statements, after those of its source_policy_documents (which
        Terraform merges in; their sids may not repeat)."""
        body = self._doc(blocks, name, mutate, module)
        unknown = set(body) - {"statement", "source_policy_documents", "__is_block__", "__comments__"}
        if unknown:
            raise Unmodelled(f"aws_iam_policy_document.{name}: {sorted(unknown)} are not modelled")
        out = []
        for source in body.get("source_policy_documents", []):
            ref = re.fullmatch(DOC_REF, unquote(source))
            if not ref:
                raise Unmodelled(f"aws_iam_policy_document.{name}: source {source} is not a document of the module")
            out += self._statements(blocks, ref.group(1), env, mutate, module)
        out += statements(body, env)
        sids = [st["sid"] for st in out if st["sid"]]
        if len(sids) != len(set(sids)):
            raise Unmodelled(f"aws_iam_policy_document.{name}: a sid repeats across its sources: {sids}")
        return out

    def _roles(self, blocks, env, account, mutate, module):
        """{role name: {arn, trust, policies}} from aws_iam_role and aws_iam_role_policy."""
        allowed = {"aws_iam_role", "aws_iam_role_policy", "aws_iam_policy_document"}
        for kind, rtype, rname in blocks:
            if rtype.startswith("aws_iam") and rtype not in allowed:
                raise Unmodelled(f"{rtype}.{rname} grants outside the modelled documents")
        doc_ref = DOC_REF
        roles = {}
        for (kind, rtype, rname), body in blocks.items():
            if rtype != "aws_iam_role":
                continue
            if {"inline_policy", "managed_policy_arns", "permissions_boundary"} & set(body):
                raise Unmodelled(f"aws_iam_role.{rname} has grants outside the modelled documents")
            trust = re.fullmatch(doc_ref, unquote(body["assume_role_policy"])).group(1)
            role_arn = f"arn:aws:iam::{account}:role/{resolve(body['name'], env)}"
            policies = []
            for (k2, t2, n2), b2 in blocks.items():
                if t2 == "aws_iam_role_policy" and unquote(b2["role"]) == f"${{aws_iam_role.{rname}.id}}":
                    policy = unquote(b2["policy"])
                    # A policy picked from a map by a variable: local.policy[var.access].
                    picked = re.fullmatch(r"\$\{local\.([a-z_]+)\[var\.([a-z_]+)\]\}", policy)
                    if picked:
                        policy = blocks[("local", picked.group(1), "")][env[f"var.{picked.group(2)}"]]
                    doc = re.fullmatch(doc_ref, policy).group(1)
                    policies.append(self._statements(blocks, doc, env, mutate, module))
            roles[f"{module}:{rname}"] = {
                "arn": role_arn,
                "trust": self._statements(blocks, trust, env, mutate, module),
                "policies": policies,
            }
        return roles

    # --- Questions ---

    def role(self, side, role):
        return self.server[side]["roles"][role]

    def can_assume(self, side, role, who, ctx=None):
        r = self.role(side, role)
        action = "sts:AssumeRoleWithWebIdentity" if who[0] == "Federated" else "sts:AssumeRole"
        context = dict(ctx or {})
        if who[0] == "AWS":
            context["aws:PrincipalArn"] = who[1]  # STS sets it for every AWS caller
        return decide([r["trust"]], action, r["arn"], context, who)

    def identity_allows(self, side, role, action, resource, ctx=None):
        return decide(self.role(side, role)["policies"], action, resource, ctx or dict(SECURE), None)

    def s3(self, side, role, action, owner, bucket, key="aggregation/batch.sig", ctx=None):
        """One S3 action by `role` (of server `side`) on `owner`'s bucket, no KMS involved."""
        target = self.server[owner]
        arn = target["arn"][bucket]
        resource = arn if action == "s3:ListBucket" else f"{arn}/{key}"
        context = ctx or dict(SECURE)
        principal = ("AWS", self.role(side, role)["arn"])
        if side != owner:
            # Across accounts both the caller's policy and the bucket's must allow.
            allowed_here = self.identity_allows(side, role, action, resource, context)
            return allowed_here and decide([target["bucket_policy"][bucket]], action, resource, context, principal)
        docs = self.role(side, role)["policies"] + [target["bucket_policy"][bucket]]
        return decide(docs, action, resource, context, principal)

    def kms(self, side, role, action, owner, bucket, via_s3=True):
        target = self.server[owner]
        ctx = {"kms:EncryptionContext:aws:s3:arn": target["arn"][bucket]}
        if via_s3:
            ctx["kms:ViaService"] = S3_SERVICE
        principal = ("AWS", self.role(side, role)["arn"])
        key_allows = decide([target["key_policy"]], action, target["key"], ctx, principal)
        return key_allows and decide(self.role(side, role)["policies"], action, target["key"], ctx, None)

    def put(self, side, role, owner, bucket, ctx=None):
        """A whole upload, multipart included: PutObject and both KMS calls S3 makes."""
        return (
            self.s3(side, role, "s3:PutObject", owner, bucket, ctx=ctx)
            and self.kms(side, role, "kms:GenerateDataKey", owner, bucket)
            and self.kms(side, role, "kms:Decrypt", owner, bucket)
        )

    def get(self, side, role, owner, bucket, ctx=None):
        return self.s3(side, role, "s3:GetObject", owner, bucket, ctx=ctx) and self.kms(
            side, role, "kms:Decrypt", owner, bucket
        )

    def list(self, side, role, owner, bucket):
        return self.s3(side, role, "s3:ListBucket", owner, bucket)


# --- The grants -------------------------------------------------------------------------------------

BUCKETS = ("ingestion", "own", "peer_inbox", "sum_parts")
DESTRUCTIVE = (
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectAcl",
    "s3:PutBucketPolicy",
    "s3:DeleteBucket",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:GetObjectVersion",
)


def checks(d):
    """(description, holds) for every grant and denial of issue 7, item 3."""
    out = []

    def check(text, holds):
        out.append((text, bool(holds)))

    for side, peer in (("pha", "facilitator"), ("facilitator", "pha")):
        S = f"[{side}] "
        # The ingestor: put into the ingestion bucket, nothing else.
        ing = "ingestor:ingestor"
        check(S + "the ingestor may assume its role with the external id",
              d.can_assume(side, ing, ("AWS", INGESTOR), {"sts:ExternalId": EXTERNAL_ID}))
        check(S + "the ingestor may not assume its role without the external id",
              not d.can_assume(side, ing, ("AWS", INGESTOR)))
        for who in (PORTAL, STRANGER, neighbour(INGESTOR), d.role(peer, "server:job")["arn"]):
            check(S + f"{who} may not assume the ingestor role",
                  not d.can_assume(side, ing, ("AWS", who), {"sts:ExternalId": EXTERNAL_ID}))
        check(S + "the ingestor may put batches into ingestion", d.put(side, ing, side, "ingestion"))
        check(S + "the ingestor may not read ingestion", not d.get(side, ing, side, "ingestion"))
        check(S + "the ingestor may not list ingestion", not d.list(side, ing, side, "ingestion"))
        for bucket in ("own", "peer_inbox", "sum_parts"):
            check(S + f"the ingestor may not put into {bucket}", not d.s3(side, ing, "s3:PutObject", side, bucket))
            check(S + f"the ingestor may not read {bucket}", not d.s3(side, ing, "s3:GetObject", side, bucket))
        check(S + "the ingestor's key use is bound to the ingestion bucket",
              not d.kms(side, ing, "kms:GenerateDataKey", side, "own"))
        check(S + "the ingestor may not use the key outside S3",
              not d.kms(side, ing, "kms:Decrypt", side, "ingestion", via_s3=False))

        # The portal: read sum parts and create queries there, nothing else.
        por = "portal:portal"
        check(S + "the portal may assume its role", d.can_assume(side, por, ("AWS", PORTAL)))
        for who in (INGESTOR, STRANGER, neighbour(PORTAL), d.role(peer, "server:job")["arn"]):
            check(S + f"{who} may not assume the portal role", not d.can_assume(side, por, ("AWS", who)))
        check(S + "the portal may read sum parts", d.get(side, por, side, "sum_parts"))
        check(S + "the portal may list sum parts", d.list(side, por, side, "sum_parts"))
        check(S + "the portal may not write sum parts", not d.s3(side, por, "s3:PutObject", side, "sum_parts"))
        check(S + "the portal may create a query in sum parts",
              d.s3(side, por, "s3:PutObject", side, "sum_parts", key=QUERY_KEY, ctx=CREATE)
              and d.kms(side, por, "kms:GenerateDataKey", side, "sum_parts"))
        check(S + "the portal may not replace a query (a put without If-None-Match)",
              not d.s3(side, por, "s3:PutObject", side, "sum_parts", key=QUERY_KEY))
        for other in NOT_QUERY_KEYS:
            check(S + f"the portal may not create {other.rsplit('/', 1)[1]} in sum parts",
                  not d.s3(side, por, "s3:PutObject", side, "sum_parts", key=other, ctx=CREATE))
        for bucket in ("ingestion", "own", "peer_inbox"):
            check(S + f"the portal may not create a query in {bucket}",
                  not d.s3(side, por, "s3:PutObject", side, bucket, key=QUERY_KEY, ctx=CREATE))
        for action in DESTRUCTIVE:
            # Even in the context of a create-only put, the widest a request can have.
            check(S + f"the portal may not {action} on a query",
                  not d.s3(side, por, action, side, "sum_parts", key=QUERY_KEY, ctx=CREATE))
        check(S + "the portal may not upload a query in parts",
              not d.s3(side, por, "s3:AbortMultipartUpload", side, "sum_parts", key=QUERY_KEY, ctx=CREATE))
        check(S + "the portal's key use for writing is bound to sum parts",
              not d.kms(side, por, "kms:GenerateDataKey", side, "own"))
        check(S + "the portal may not encrypt outside S3",
              not d.kms(side, por, "kms:GenerateDataKey", side, "sum_parts", via_s3=False))
        sse = {"s3:x-amz-server-side-encryption": "AES256"}
        check(S + "sum parts refuse a query asking for SSE-S3",
              not d.s3(side, por, "s3:PutObject", side, "sum_parts", key=QUERY_KEY, ctx=dict(CREATE, **sse)))
        # The read-only grant: read sum parts, write nothing.
        rea = "portal:reader"
        check(S + "the read-only portal role may read and list sum parts",
              d.get(side, rea, side, "sum_parts") and d.list(side, rea, side, "sum_parts"))
        check(S + "the read-only portal role may not create a query",
              not d.s3(side, rea, "s3:PutObject", side, "sum_parts", key=QUERY_KEY, ctx=CREATE))
        check(S + "the read-only portal role may not encrypt",
              not d.kms(side, rea, "kms:GenerateDataKey", side, "sum_parts"))
        for bucket in ("ingestion", "own", "peer_inbox"):
            check(S + f"the portal may not read {bucket}", not d.get(side, por, side, bucket))
            check(S + f"the portal may not list {bucket}", not d.list(side, por, side, bucket))
        check(S + "the portal may not decrypt outside S3",
              not d.kms(side, por, "kms:Decrypt", side, "sum_parts", via_s3=False))
        check(S + "the portal may not decrypt objects of own storage",
              not d.kms(side, por, "kms:Decrypt", side, "own"))

        # The peer: put into this server's inbox, through the role granted to its job role.
        wri = "server:peer_inbox_writer"
        peer_job = d.role(peer, "server:job")["arn"]
        check(S + "the peer's job role may assume the inbox writer", d.can_assume(side, wri, ("AWS", peer_job)))
        check(S + "the peer's job role is allowed to assume it on its side",
              d.identity_allows(peer, "server:job", "sts:AssumeRole", d.role(side, wri)["arn"]))
        for who in (INGESTOR, PORTAL, STRANGER, neighbour(peer_job), d.role(side, "server:job")["arn"]):
            check(S + f"{who} may not assume the inbox writer", not d.can_assume(side, wri, ("AWS", who)))
        check(S + "the inbox writer may put into the peer inbox", d.put(side, wri, side, "peer_inbox"))
        check(S + "the inbox writer may not read the peer inbox", not d.get(side, wri, side, "peer_inbox"))
        check(S + "the inbox writer may not list the peer inbox", not d.list(side, wri, side, "peer_inbox"))
        for bucket in ("ingestion", "own", "sum_parts"):
            check(S + f"the inbox writer may not put into {bucket}", not d.s3(side, wri, "s3:PutObject", side, bucket))
        check(S + "the inbox writer's key use is bound to the peer inbox",
              not d.kms(side, wri, "kms:GenerateDataKey", side, "own"))

        # The server's own jobs: read what they must, write only their outputs.
        job = "server:job"
        oidc = d.server[side]["roles"][job]["trust"][0]["principals"][0][1][0]
        host = oidc.split("oidc-provider/", 1)[1]
        sa = {f"{host}:sub": f"system:serviceaccount:divvi-{side}:divvi", f"{host}:aud": "sts.amazonaws.com"}
        check(S + "the jobs' service account may assume the job role", d.can_assume(side, job, ("Federated", oidc), sa))
        other_sa = dict(sa, **{f"{host}:sub": f"system:serviceaccount:divvi-{side}:default"})
        check(S + "another service account may not", not d.can_assume(side, job, ("Federated", oidc), other_sa))
        check(S + "a token for another audience may not", not d.can_assume(side, job, ("Federated", oidc), dict(sa, **{f"{host}:aud": "other"})))
        for who in (INGESTOR, PORTAL, STRANGER, peer_job):
            check(S + f"{who} may not assume the job role", not d.can_assume(side, job, ("AWS", who)))
        check(S + "the jobs may list and read ingestion", d.list(side, job, side, "ingestion") and d.get(side, job, side, "ingestion"))
        check(S + "the jobs may list and read the peer inbox", d.list(side, job, side, "peer_inbox") and d.get(side, job, side, "peer_inbox"))
        check(S + "the jobs may list, read and write own storage",
              d.list(side, job, side, "own") and d.get(side, job, side, "own") and d.put(side, job, side, "own"))
        check(S + "the jobs may write sum parts", d.put(side, job, side, "sum_parts"))
        check(S + "the jobs may not write into ingestion", not d.s3(side, job, "s3:PutObject", side, "ingestion"))
        check(S + "the jobs may not write into their own inbox", not d.s3(side, job, "s3:PutObject", side, "peer_inbox"))
        check(S + "the jobs may list and read sum parts (passes reads the portal's queries there)",
              d.list(side, job, side, "sum_parts") and d.get(side, job, side, "sum_parts"))
        check(S + "the jobs may not use the key outside S3", not d.kms(side, job, "kms:Decrypt", side, "own", via_s3=False))
        check(S + "the jobs may not write the peer's inbox directly",
              not d.s3(side, job, "s3:PutObject", peer, "peer_inbox"))
        check(S + "through the peer's grant the jobs may put into the peer's inbox", d.put(peer, wri, peer, "peer_inbox"))
        for bucket in BUCKETS:
            check(S + f"the jobs may not read the peer's {bucket}", not d.s3(side, job, "s3:GetObject", peer, bucket))
        for other in ("server:job", "portal:portal", "portal:reader", "ingestor:ingestor"):
            check(S + f"the jobs may not assume the peer's {other}",
                  not d.identity_allows(side, job, "sts:AssumeRole", d.role(peer, other)["arn"]))
        for role in (ing, por, rea, wri, job):
            for bucket in BUCKETS:
                for action in DESTRUCTIVE:
                    check(S + f"{role} may not {action} on {bucket}", not d.s3(side, role, action, side, bucket))
            for action in ("iam:PassRole", "iam:CreateRole", "kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "s3:CreateBucket"):
                check(S + f"{role} may not {action}", not d.identity_allows(side, role, action, "*"))

        # Every bucket: TLS only, whoever asks.
        for bucket in BUCKETS:
            plain = {"aws:SecureTransport": "false", "s3:TlsVersion": "1.3"}
            old = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.1"}
            who = por if bucket == "sum_parts" else job
            action = "s3:GetObject"
            check(S + f"{bucket} refuses a read without TLS", not d.s3(side, who, action, side, bucket, ctx=plain))
            check(S + f"{bucket} refuses TLS older than 1.2", not d.s3(side, who, action, side, bucket, ctx=old))
        # Every bucket: objects only under its own KMS key.
        writer = {"ingestion": ing, "own": job, "peer_inbox": wri, "sum_parts": job}
        key = d.server[side]["key"]
        for bucket, who in writer.items():
            sse = "s3:x-amz-server-side-encryption"
            kms_key = "s3:x-amz-server-side-encryption-aws-kms-key-id"
            check(S + f"{bucket} refuses an upload asking for SSE-S3",
                  not d.s3(side, who, "s3:PutObject", side, bucket, ctx=dict(SECURE, **{sse: "AES256"})))
            check(S + f"{bucket} refuses an upload under another KMS key",
                  not d.s3(side, who, "s3:PutObject", side, bucket, ctx=dict(SECURE, **{sse: "aws:kms", kms_key: STRANGER_KEY})))
            check(S + f"{bucket} takes an upload naming its own key",
                  d.s3(side, who, "s3:PutObject", side, bucket, ctx=dict(SECURE, **{sse: "aws:kms", kms_key: key})))
    return out


# --- Self-test: widened documents must be caught --------------------------------------------------


def widen(module, doc, statement_sid, drop=False, **changes):
    """A mutation: the statement changed (a key set to None is removed), or dropped."""
    def mutate(m, name, body):
        if m != module or name != doc:
            return
        if drop:
            body["statement"] = [st for st in body["statement"] if unquote(st.get("sid", "")) != statement_sid]
        for st in body["statement"]:
            if unquote(st.get("sid", "")) == statement_sid:
                for key, value in changes.items():
                    if value is None:
                        st.pop(key, None)
                    else:
                        st[key] = value
    return mutate


MUTATIONS = {
    "put access also reads": widen("access", "put", "PutObjects", actions=['"s3:PutObject"', '"s3:GetObject"']),
    "put access writes anywhere": widen("access", "put", "PutObjects", resources=['"*"']),
    "read access may write": widen("access", "read", "ReadObjects", actions=['"s3:*"']),
    "job deletes own objects": widen("server", "job", "ReadWriteOwnStorage",
                                     actions=['"s3:GetObject"', '"s3:PutObject"', '"s3:DeleteObject"']),
    "job key use outside S3": widen("server", "job", "DecryptThroughS3", condition=None),
    "access roles trust anyone": widen("access", "trust", "TheNamedPrincipalsOnly",
                                       principals=[{"type": '"AWS"', "identifiers": ['"*"']}], condition=None),
    "job trust without subject": widen("server", "job_trust", "ThisServersPodsOnly", condition=None),
    "plain HTTP allowed": widen("bucket", "bucket", "DenyInsecureTransport", effect='"Allow"'),
    "access trust without external id": widen("access", "trust", "TheNamedPrincipalsOnly", dynamic=None),
    "access roles trust the party's whole account": widen("access", "trust", "TheNamedPrincipalsOnly", condition=None),
    "SSE-S3 uploads allowed": widen("bucket", "bucket", "DenyOtherEncryption", drop=True),
    "other KMS keys allowed": widen("bucket", "bucket", "DenyOtherKey", drop=True),
    "old TLS allowed": widen("bucket", "bucket", "DenyOldTLS", drop=True),
    "put access may list": widen("access", "put", "PutObjects", actions=['"s3:PutObject"', '"s3:ListBucket"'],
                                 resources=['"${var.bucket_arn}/*"', '"${var.bucket_arn}"']),
    "collect access puts any key": widen("access", "collect", "CreateQueries", resources=['"${var.bucket_arn}/*"']),
    "collect access replaces queries": widen("access", "collect", "CreateQueries", condition=None),
    "collect access encrypts for any bucket": widen("access", "collect", "EncryptThroughS3", condition=None),
    "collect access does anything to queries": widen("access", "collect", "CreateQueries", actions=['"s3:*"']),
}


def ingestor_checks(widen_to=None):
    """modules/divvi-ingestor: the upload pods' role may assume the two servers' put
    grants and nothing else; only this namespace's ServiceAccount may become it.
    `widen_to` adds a statement allowing that action anywhere (the self-test)."""
    blocks = read_module("divvi-ingestor")
    iam = {k for k in blocks if k[0] in ("resource", "data") and k[1].startswith("aws_iam")}
    modelled = {("data", "aws_iam_policy_document", "trust"), ("data", "aws_iam_policy_document", "upload"),
                ("resource", "aws_iam_role", "upload"), ("resource", "aws_iam_role_policy", "upload")}
    results = [(f"divvi-ingestor: IAM blocks beyond the modelled ones: {sorted(iam - modelled)}", iam == modelled)]
    grants = [f"arn:aws:iam::{ACCOUNT['pha']}:role/pha-divvi-ingestor",
              f"arn:aws:iam::{ACCOUNT['facilitator']}:role/facilitator-divvi-ingestor"]
    oidc = f"oidc.eks.{REGION}.amazonaws.com/id/APP"
    env = {"local.put_role_arns": grants, "local.oidc_host": oidc, "var.namespace": "divvi-ingestor",
           "local.service_account": "divvi",
           "var.eks_oidc_provider_arn": f"arn:aws:iam::444444444444:oidc-provider/{oidc}"}
    policy = statements(blocks[("data", "aws_iam_policy_document", "upload")], env)
    if widen_to:
        policy.append({"sid": "Widened", "effect": "Allow", "actions": [widen_to], "resources": ["*"],
                       "principals": [], "conditions": []})
    trust = statements(blocks[("data", "aws_iam_policy_document", "trust")], env)
    for grant in grants:
        results.append((f"the ingestor may assume {grant}", decide([policy], "sts:AssumeRole", grant, {}, None)))
    for action, resource in (("sts:AssumeRole", STRANGER), ("s3:PutObject", "arn:aws:s3:::pha-divvi-ingestion/x"),
                             ("s3:GetObject", "arn:aws:s3:::pha-divvi-ingestion/x"), ("s3:ListBucket", "arn:aws:s3:::pha-divvi-ingestion"),
                             ("iam:PassRole", grants[0])):
        results.append((f"the ingestor may not {action} on {resource} itself", not decide([policy], action, resource, {}, None)))
    provider = ("Federated", env["var.eks_oidc_provider_arn"])
    for sub, allowed in (("system:serviceaccount:divvi-ingestor:divvi", True),
                         ("system:serviceaccount:default:divvi", False)):
        ctx = {f"{oidc}:sub": sub, f"{oidc}:aud": "sts.amazonaws.com"}
        ok = decide([trust], "sts:AssumeRoleWithWebIdentity", "*", ctx, provider) == allowed
        results.append((f"{sub} {'may' if allowed else 'may not'} become the ingestor role", ok))
    return results


def main():
    if "--self-test" in sys.argv:
        for widened in ("s3:*", "sts:*"):
            if all(ok for _, ok in ingestor_checks(widened)):
                sys.exit(f"self-test: the ingestor role widened by {widened} went unnoticed")
            print(f"caught: the ingestor role widened by {widened}")
        missed = []
        for label, mutation in MUTATIONS.items():
            failures = [t for t, ok in checks(Deployment(mutation)) if not ok]
            print(f"{'caught' if failures else 'MISSED'}: {label}" + (f" ({len(failures)} checks fail, e.g. {failures[0]})" if failures else ""))
            if not failures:
                missed.append(label)
        if missed:
            sys.exit(f"self-test: {len(missed)} widened policies went unnoticed")
        print(f"self-test: all {len(MUTATIONS)} widened policies caught")
        return
    results = checks(Deployment()) + ingestor_checks()
    failed = [t for t, ok in results if not ok]
    for text in failed:
        print(f"FAILED: {text}")
    print(f"iam: {len(results) - len(failed)} of {len(results)} grants and denials hold")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
