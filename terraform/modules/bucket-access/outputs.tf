output "role_arn" {
  description = "The role the party assumes (its `role_arn` for this bucket's location in its divvi config)."
  value       = aws_iam_role.this.arn
}
