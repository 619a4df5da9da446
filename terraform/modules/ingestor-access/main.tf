# The role an ingestor (an app backend) assumes to drop report batches into one
# server's ingestion bucket. It may put objects there and do nothing else: not read,
# list or delete them, and not touch any other bucket.

data "aws_region" "current" {}

locals {
  # Trust goes to the ingestor's accounts, narrowed to the named roles by aws:PrincipalArn:
  # unlike a role ARN as principal, this does not need the role to exist yet, and keeps
  # working when the ingestor recreates it.
  principal_accounts = distinct([for arn in var.ingestor_principal_arns : "arn:${split(":", arn)[1]}:iam::${split(":", arn)[4]}:root"])
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "TheIngestorOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = local.principal_accounts
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = var.ingestor_principal_arns
    }
    dynamic "condition" {
      for_each = var.external_id == null ? [] : [var.external_id]
      content {
        test     = "StringEquals"
        variable = "sts:ExternalId"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "ingestor" {
  name               = var.name
  description        = "divvi: an ingestor puts report batches into ${var.ingestion_bucket_arn}"
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "put_batches" {
  statement {
    sid       = "PutIntoIngestion"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.ingestion_bucket_arn}/*"]
  }
  statement {
    sid       = "EncryptThroughS3IntoIngestion"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"] # Decrypt: multipart uploads
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.current.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [var.ingestion_bucket_arn]
    }
  }
}

resource "aws_iam_role_policy" "put_batches" {
  name   = "divvi-put-ingestion"
  role   = aws_iam_role.ingestor.id
  policy = data.aws_iam_policy_document.put_batches.json
}
