output "role_arn" {
  description = "The upload server's role: give it to each server's ingestor grant (bucket-access principal_arns)."
  value       = aws_iam_role.upload.arn
}

output "service" {
  description = "The Kubernetes Service devices reach (namespace/name), for your TLS ingress."
  value       = "${var.namespace}/${kubernetes_service_v1.upload.metadata[0].name}"
}
