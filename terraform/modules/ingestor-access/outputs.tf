output "role_arn" {
  description = "The role the ingestor assumes (its `role_arn` for this server's ingestion location in ingestor.toml)."
  value       = aws_iam_role.ingestor.arn
}
