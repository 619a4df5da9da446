terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
    kubernetes = {
      source = "hashicorp/kubernetes"
      # The CronJobs use pod_failure_policy (provider PR #2394, first released in 2.26.0).
      version = ">= 2.27, < 4.0"
    }
  }
}
