output "ingestor_locations" {
  description = "What the ingestor puts in ingestor.toml: per server, its ingestion bucket and the role to assume."
  value = {
    server0 = { url = "s3://${module.pha.buckets.ingestion}", role_arn = module.pha_ingestor.role_arn }
    server1 = { url = "s3://${module.facilitator.buckets.ingestion}", role_arn = module.facilitator_ingestor.role_arn }
  }
}

output "portal_locations" {
  description = "What the portal puts in portal.toml: per server, its sum-parts bucket and the role to assume (read, and create .query objects)."
  value = {
    server0 = { url = "s3://${module.pha.buckets.sum_parts}", role_arn = module.pha_portal.role_arn }
    server1 = { url = "s3://${module.facilitator.buckets.sum_parts}", role_arn = module.facilitator_portal.role_arn }
  }
}

output "namespaces" {
  description = "Where to create each server's keys Secret (see the README)."
  value       = { server0 = module.pha.namespace, server1 = module.facilitator.namespace }
}
