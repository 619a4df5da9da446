# The server's four buckets, each private, TLS-only, SSE-KMS, versioned, expiring and
# logged (modules/private-bucket), plus the bucket their access logs go to.
#
#   ingestion   the ingestor puts report batches here (through its access role)
#   own         this server's validations, run records and replay set; Poplar1 round
#               states under rounds/, expiring after round_state_days, and share
#               stashes under stash/, expiring with the peer inbox's retention
#   peer_inbox  the peer puts its validations (and server 0 its run manifests) here
#   sum_parts   this server's signed sum parts; the portal reads them

locals {
  buckets = {
    ingestion  = "${var.name}-ingestion"
    own        = "${var.name}-own"
    peer_inbox = "${var.name}-peer-inbox"
    sum_parts  = "${var.name}-sum-parts"
  }
}

module "bucket" {
  source   = "../private-bucket"
  for_each = local.buckets

  name              = each.value
  kms_key_arn       = aws_kms_key.storage.arn
  retention_days    = var.retention_days[each.key]
  access_log_bucket = aws_s3_bucket.access_logs.id
  access_log_prefix = "${each.value}/"
  force_destroy     = var.force_destroy
  tags              = var.tags

  # Dead long before the rest of the own bucket, and the jobs may not delete: Poplar1
  # round states (divvi's `rounds/` prefix) once their pass's sum part exists, and share
  # stashes (`stash/`, each report's sealed share data) once the peer's validations they
  # pair with have expired, since no batch can be summed without those.
  short_lived = each.key == "own" ? [
    { prefix = "rounds/", days = var.round_state_days },
    { prefix = "stash/", days = var.retention_days.peer_inbox },
  ] : []
}

# --- Access logs ----------------------------------------------------------------------
# S3 delivers server access logs only to a bucket encrypted with SSE-S3, not SSE-KMS,
# and a log bucket does not log itself (each delivery would log another).

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_145:S3 server access log delivery does not support SSE-KMS targets; SSE-S3 (AES256) is set below.
  #checkov:skip=CKV_AWS_18:This is the access-log bucket; logging it into itself would log every delivery.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice for the operator; expiring logs need none.
  #checkov:skip=CKV2_AWS_62:No consumer of object-created events for logs.
  bucket        = "${var.name}-access-logs"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    id     = "expire"
    status = "Enabled"
    # Every object. (An empty prefix, not `filter {}`, which provider 5.90+ warns about.)
    filter {
      prefix = ""
    }
    expiration {
      days = var.retention_days.access_logs
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid     = "S3LogDeliveryForThisAccountsBuckets"
    effect  = "Allow"
    actions = ["s3:PutObject"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:s3:::${var.name}-*"]
    }
  }
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    resources = [aws_s3_bucket.access_logs.arn, "${aws_s3_bucket.access_logs.arn}/*"]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  policy     = data.aws_iam_policy_document.access_logs.json
  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}
