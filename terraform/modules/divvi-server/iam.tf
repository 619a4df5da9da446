# Two roles, each allowed exactly what divvi does with it (and nothing that deletes):
#
#   job                the server's pods (IRSA): read inputs, read/write its own bucket
#                      and its sum parts, and assume the inbox-writer role the peer granted
#   peer_inbox_writer  assumed by the peer's job role: put objects into the peer inbox
#                      (modules/bucket-access, as the ingestor's and the portal's roles)
#
# Every grant of the storage key goes through S3 only (kms:ViaService) and only for
# the named buckets (the encryption context is the bucket ARN: bucket keys are on).

locals {
  bucket_arn = { for k, m in module.bucket : k => m.arn }
  objects    = { for k, m in module.bucket : k => "${m.arn}/*" }
  oidc_host  = trimprefix(var.eks_oidc_issuer, "https://")
  s3_service = "s3.${data.aws_region.current.region}.amazonaws.com"
  # The Kubernetes ServiceAccount the jobs run as (kubernetes.tf).
  service_account = "divvi"
}

# --- The jobs' role -------------------------------------------------------------------

data "aws_iam_policy_document" "job_trust" {
  statement {
    sid     = "ThisServersPodsOnly"
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

resource "aws_iam_role" "job" {
  name               = "${var.name}-job"
  description        = "divvi ${var.name}: intake, aggregate and passes jobs"
  assume_role_policy = data.aws_iam_policy_document.job_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "job" {
  statement {
    sid       = "ListWhatItReads"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn.ingestion, local.bucket_arn.own, local.bucket_arn.peer_inbox, local.bucket_arn.sum_parts]
  }
  # Sum parts too: passes reads the portal's queries there, and its previous pass's sum
  # part (a server reading what it wrote itself or was sent to act on learns nothing new).
  statement {
    sid       = "ReadIngestionPeerInboxAndSumParts"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = [local.objects.ingestion, local.objects.peer_inbox, local.objects.sum_parts]
  }
  statement {
    sid       = "ReadWriteOwnStorage"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [local.objects.own]
  }
  statement {
    sid       = "WriteSumParts"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [local.objects.sum_parts]
  }
  statement {
    sid       = "DecryptThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.storage.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
    # Every bucket it reads; own and sum_parts also for multipart uploads (their parts'
    # data keys).
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [local.bucket_arn.ingestion, local.bucket_arn.own, local.bucket_arn.peer_inbox, local.bucket_arn.sum_parts]
    }
  }
  statement {
    sid       = "EncryptThroughS3"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.storage.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [local.bucket_arn.own, local.bucket_arn.sum_parts]
    }
  }
  statement {
    sid       = "WriteIntoThePeersInbox"
    effect    = "Allow"
    actions   = ["sts:AssumeRole"]
    resources = [var.peer_inbox_writer_role_arn]
  }
}

resource "aws_iam_role_policy" "job" {
  name   = "divvi-job"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}

# --- The role the peer assumes to write into this server's inbox --------------------------

module "peer_inbox_writer" {
  source = "../bucket-access"

  name           = "${var.name}-peer-inbox-writer"
  access         = "put"
  principal_arns = [var.peer_job_role_arn]
  bucket_arn     = local.bucket_arn.peer_inbox
  kms_key_arn    = aws_kms_key.storage.arn
  tags           = var.tags
}
