output "role_arn" {
  description = "The role the portal assumes (its `role_arn` for this server's sum_parts location in portal.toml)."
  value       = aws_iam_role.portal.arn
}
