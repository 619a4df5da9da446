# One customer-managed key per server encrypts all of its buckets. Its key policy leaves
# authorisation to IAM in this account (the usual default): every role that may use it
# is one of this module's, and each is pinned to its buckets by encryption context.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:A key policy's "*" resource is this key alone, and the account root statement is what lets IAM policies grant its use; without it the key cannot be managed.
  #checkov:skip=CKV_AWS_111:As above: the key's own policy, delegating to IAM in this account; the roles' grants are narrowed by kms:ViaService and encryption context.
  #checkov:skip=CKV_AWS_356:In a key policy the resource "*" means this key only.
  statement {
    sid       = "AccountAdministersAndDelegatesToIAM"
    effect    = "Allow"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "storage" {
  description             = "divvi ${var.name}: SSE-KMS of the server's buckets"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "storage" {
  name          = "alias/${var.name}-storage"
  target_key_id = aws_kms_key.storage.key_id
}
