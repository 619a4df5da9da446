variable "name" {
  description = "Name of the role to create in the server's account, e.g. \"my-pha-divvi-ingestor\"."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.name))
    error_message = "The name must be a valid IAM role name (1 to 64 characters)."
  }
}

variable "access" {
  description = "What the role may do with the bucket's objects: \"put\" (the ingestor into ingestion, the peer into the peer inbox), \"read\" (the portal from sum parts), or \"collect\" (read, and create objects whose key ends in .query: the portal, which asks the servers for heavy-hitters passes in their sum-parts buckets)."
  type        = string
  validation {
    condition     = contains(["put", "read", "collect"], var.access)
    error_message = "The access must be \"put\", \"read\" or \"collect\"."
  }
}

variable "principal_arns" {
  description = "IAM principals of the other party (roles in its own AWS account) that may assume the role."
  type        = list(string)
  validation {
    condition     = length(var.principal_arns) > 0 && alltrue([for p in var.principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", p))])
    error_message = "The principal_arns must be IAM role ARNs."
  }
}

variable "external_id" {
  description = "External ID the party must present when assuming the role (guards against the confused deputy when, say, one ingestor serves several PHAs); null for none. An identifier agreed with the party, not a secret."
  type        = string
  default     = null
}

variable "bucket_arn" {
  description = "ARN of the server's bucket the role reaches (a divvi-server output bucket_arns.*)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.bucket_arn))
    error_message = "The bucket_arn must be an S3 bucket ARN."
  }
}

variable "kms_key_arn" {
  description = "ARN of the server's storage key (divvi-server output kms_key_arn)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN."
  }
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
