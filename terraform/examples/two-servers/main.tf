# Server 0 (PHA) and server 1 (facilitator), each writing into the other's inbox through
# the role the other granted; an ingestor that may only put batches into both ingestion
# buckets; a portal that may only read both servers' sum parts and create its
# heavy-hitters queries (.query objects) beside them.

module "pha" {
  source    = "../../modules/divvi-server"
  providers = { aws = aws.pha, kubernetes = kubernetes.pha }

  name         = var.pha.name
  server_index = 0
  instance     = var.instance
  aggregations = var.aggregations

  peer_job_role_arn          = module.facilitator.job_role_arn
  peer_inbox_bucket          = module.facilitator.buckets.peer_inbox
  peer_inbox_writer_role_arn = module.facilitator.peer_inbox_writer_role_arn

  signing_key_id        = var.pha.signing_key_id
  packet_key_ids        = var.pha.packet_key_ids
  packet_key_scheme     = var.packet_key_scheme
  min_clients           = var.min_clients
  trusted_ingestor_keys = var.ingestor_keys
  trusted_peer_keys     = [{ id = var.facilitator.signing_key_id, public_key = var.facilitator.public_key }]
  trusted_portal_keys   = var.portal_keys

  retention_days        = var.retention_days
  eks_oidc_provider_arn = data.aws_iam_openid_connect_provider.pha.arn
  eks_oidc_issuer       = data.aws_eks_cluster.pha.identity[0].oidc[0].issuer
  namespace             = "divvi-pha"
  image                 = var.image
  intake_parallelism    = var.intake_parallelism
  pushgateway_url       = var.pushgateway_url
}

module "facilitator" {
  source    = "../../modules/divvi-server"
  providers = { aws = aws.facilitator, kubernetes = kubernetes.facilitator }

  name         = var.facilitator.name
  server_index = 1
  instance     = var.instance
  aggregations = var.aggregations

  peer_job_role_arn          = module.pha.job_role_arn
  peer_inbox_bucket          = module.pha.buckets.peer_inbox
  peer_inbox_writer_role_arn = module.pha.peer_inbox_writer_role_arn

  signing_key_id        = var.facilitator.signing_key_id
  packet_key_ids        = var.facilitator.packet_key_ids
  packet_key_scheme     = var.packet_key_scheme
  min_clients           = var.min_clients
  trusted_ingestor_keys = var.ingestor_keys
  trusted_peer_keys     = [{ id = var.pha.signing_key_id, public_key = var.pha.public_key }]
  trusted_portal_keys   = var.portal_keys

  retention_days        = var.retention_days
  eks_oidc_provider_arn = data.aws_iam_openid_connect_provider.facilitator.arn
  eks_oidc_issuer       = data.aws_eks_cluster.facilitator.identity[0].oidc[0].issuer
  namespace             = "divvi-facilitator"
  image                 = var.image
  intake_parallelism    = var.intake_parallelism
  # After the PHA's run, which decides each window's batches.
  aggregate_schedule = "50 6-23 * * *"
  # 3 minutes after the PHA's, so each server finds the other's latest round.
  passes_schedule = "4-59/5 * * * *"
  pushgateway_url = var.pushgateway_url
}

module "pha_ingestor" {
  source    = "../../modules/bucket-access"
  providers = { aws = aws.pha }

  name           = "${var.pha.name}-ingestor"
  access         = "put"
  principal_arns = var.ingestor_principal_arns
  bucket_arn     = module.pha.bucket_arns.ingestion
  kms_key_arn    = module.pha.kms_key_arn
}

module "facilitator_ingestor" {
  source    = "../../modules/bucket-access"
  providers = { aws = aws.facilitator }

  name           = "${var.facilitator.name}-ingestor"
  access         = "put"
  principal_arns = var.ingestor_principal_arns
  bucket_arn     = module.facilitator.bucket_arns.ingestion
  kms_key_arn    = module.facilitator.kms_key_arn
}

module "pha_portal" {
  source    = "../../modules/bucket-access"
  providers = { aws = aws.pha }

  name           = "${var.pha.name}-portal"
  access         = "collect" # read sum parts, create .query objects
  principal_arns = var.portal_principal_arns
  bucket_arn     = module.pha.bucket_arns.sum_parts
  kms_key_arn    = module.pha.kms_key_arn
}

module "facilitator_portal" {
  source    = "../../modules/bucket-access"
  providers = { aws = aws.facilitator }

  name           = "${var.facilitator.name}-portal"
  access         = "collect" # read sum parts, create .query objects
  principal_arns = var.portal_principal_arns
  bucket_arn     = module.facilitator.bucket_arns.sum_parts
  kms_key_arn    = module.facilitator.kms_key_arn
}
