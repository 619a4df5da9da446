# A role another party assumes to reach one bucket of a divvi server, with one of three
# fixed grants:
#
#   put      put objects, nothing else (the ingestor into ingestion, the peer server into
#            the peer inbox): not read, list or delete them
#   read     list and read objects, nothing else (the portal from sum parts): not write
#            or delete them
#   collect  read, and create objects whose key ends in .query, only where no object
#            has that key (the portal: sum parts, and the heavy-hitters passes it asks
#            for): no other write, no replacing, no delete
#
# In each case the server's key is usable only through S3 and only for this bucket, and
# no other bucket is reachable.

data "aws_region" "current" {}

locals {
  # Trust goes to the parties' accounts, narrowed to the named roles by
  # aws:PrincipalArn: unlike a role ARN as principal, this does not need the role to
  # exist yet (either side can apply first), and keeps working when it is recreated.
  principal_accounts = distinct([for arn in var.principal_arns : "arn:${split(":", arn)[1]}:iam::${split(":", arn)[4]}:root"])
  s3_service         = "s3.${data.aws_region.current.region}.amazonaws.com"
  # The grants of each kind of access, written out below.
  policy = {
    put     = data.aws_iam_policy_document.put.json
    read    = data.aws_iam_policy_document.read.json
    collect = data.aws_iam_policy_document.collect.json
  }
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "TheNamedPrincipalsOnly"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = local.principal_accounts
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = var.principal_arns
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

resource "aws_iam_role" "this" {
  name               = var.name
  description        = "divvi: ${var.access} objects in ${var.bucket_arn}"
  assume_role_policy = data.aws_iam_policy_document.trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "put" {
  statement {
    sid       = "PutObjects"
    effect    = "Allow"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arn}/*"]
  }
  statement {
    sid       = "EncryptThroughS3"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"] # Decrypt: multipart uploads
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [var.bucket_arn]
    }
  }
}

data "aws_iam_policy_document" "read" {
  # Listing lets a missing object read as "not found" rather than "access denied".
  statement {
    sid       = "ListObjects"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }
  statement {
    sid       = "ReadObjects"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arn}/*"]
  }
  statement {
    sid       = "DecryptThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [var.bucket_arn]
    }
  }
}

# What the portal needs for `divvi collect`: read, plus the signed queries of Poplar1
# passes (`{instance}/{aggregation}/{window}.pass{k}.query`), which it writes with
# If-None-Match, so a query once written stays as it is.
data "aws_iam_policy_document" "collect" {
  source_policy_documents = [data.aws_iam_policy_document.read.json]
  statement {
    sid       = "CreateQueries"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${var.bucket_arn}/*.query"]
    condition {
      test     = "Null"
      variable = "s3:if-none-match"
      values   = ["false"]
    }
  }
  statement {
    sid       = "EncryptThroughS3"
    effect    = "Allow"
    actions   = ["kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.s3_service]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = [var.bucket_arn]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "divvi-${var.access}"
  role   = aws_iam_role.this.id
  policy = local.policy[var.access]
}
