# One role, for the upload server's pods (IRSA): it may assume the two put-only roles the
# servers grant for their ingestion buckets, and nothing else. It reads nothing.

locals {
  oidc_host       = trimprefix(var.eks_oidc_issuer, "https://")
  service_account = "divvi"
  put_role_arns   = [for s in var.servers : s.put_role_arn]
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "TheUploadPodsOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${local.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "upload" {
  name               = "${var.name}-ingestor"
  description        = "divvi ${var.name}: the upload server, which puts batches through the servers' grants"
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "upload" {
  statement {
    sid       = "AssumeTheServersPutGrants"
    effect    = "Allow"
    actions   = ["sts:AssumeRole"]
    resources = local.put_role_arns
  }
}

resource "aws_iam_role_policy" "upload" {
  name   = "assume-put-grants"
  role   = aws_iam_role.upload.id
  policy = data.aws_iam_policy_document.upload.json
}
