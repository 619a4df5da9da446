output "job_role_arn" {
  description = "The jobs' IAM role. Give it to the peer (peer_job_role_arn), so it can be allowed to write into the peer's inbox."
  value       = aws_iam_role.job.arn
}

output "peer_inbox_writer_role_arn" {
  description = "The role the peer's jobs assume to write into this server's inbox. Give it to the peer (peer_inbox_writer_role_arn)."
  value       = module.peer_inbox_writer.role_arn
}

output "buckets" {
  description = "Bucket names: ingestion, own, peer_inbox, sum_parts and access_logs."
  value       = merge({ for k, m in module.bucket : k => m.name }, { access_logs = aws_s3_bucket.access_logs.id })
}

output "bucket_arns" {
  description = "Bucket ARNs: ingestion, own, peer_inbox and sum_parts (for the access modules)."
  value       = local.bucket_arn
}

output "kms_key_arn" {
  description = "The key encrypting the server's buckets (for the access modules)."
  value       = aws_kms_key.storage.arn
}

output "namespace" {
  description = "Kubernetes namespace of the jobs; create the keys Secret here."
  value       = kubernetes_namespace_v1.divvi.metadata[0].name
}

output "server_toml" {
  description = "The server.toml the jobs run with (public values only), e.g. for `divvi status` on an operator's machine."
  value       = local.config_toml
}
