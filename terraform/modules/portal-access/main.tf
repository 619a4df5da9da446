# The role the portal assumes to read one server's sum parts. It may list and read that
# bucket and do nothing else: not write or delete there, and not touch any other bucket.

data "aws_region" "current" {}

locals {
  # Trust goes to the portal's accounts, narrowed to the named roles by aws:PrincipalArn:
  # unlike a role ARN as principal, this does not need the role to exist yet, and keeps
  # working when the portal recreates it.
  principal_accounts = distinct([for arn in var.portal_principal_arns : "arn:${split(":", arn)[1]}:iam::${split(":", arn)[4]}:root"])
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "ThePortalOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = local.principal_accounts
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = var.portal_principal_arns
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

resource "aws_iam_role" "portal" {
  name               = var.name
  description        = "divvi: the portal reads sum parts from ${var.sum_parts_bucket_arn}"
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "read_sum_parts" {
  # Listing lets a missing sum part read as "not found" rather than "access denied".
  statement {
    sid       = "ListSumParts"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.sum_parts_bucket_arn]
  }
  statement {
    sid       = "ReadSumParts"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${var.sum_parts_bucket_arn}/*"]
  }
  statement {
    sid       = "DecryptThroughS3FromSumParts"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${data.aws_region.current.region}.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [var.sum_parts_bucket_arn]
    }
  }
}

resource "aws_iam_role_policy" "read_sum_parts" {
  name   = "divvi-read-sum-parts"
  role   = aws_iam_role.portal.id
  policy = data.aws_iam_policy_document.read_sum_parts.json
}
