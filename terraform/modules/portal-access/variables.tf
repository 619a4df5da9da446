variable "name" {
  description = "Name of the role to create in the server's account, e.g. \"my-pha-divvi-portal\"."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.name))
    error_message = "The name must be a valid IAM role name (1 to 64 characters)."
  }
}

variable "portal_principal_arns" {
  description = "IAM principals of the portal (roles in its own AWS account) that may assume the role."
  type        = list(string)
  validation {
    condition     = length(var.portal_principal_arns) > 0 && alltrue([for p in var.portal_principal_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", p))])
    error_message = "The portal_principal_arns must be IAM role ARNs."
  }
}

variable "external_id" {
  description = "External ID the portal must present when assuming the role; null for none. An identifier agreed with the portal, not a secret."
  type        = string
  default     = null
}

variable "sum_parts_bucket_arn" {
  description = "ARN of the server's sum-parts bucket (divvi-server output bucket_arns.sum_parts)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]+$", var.sum_parts_bucket_arn))
    error_message = "The sum_parts_bucket_arn must be an S3 bucket ARN."
  }
}

variable "kms_key_arn" {
  description = "ARN of the server's storage key (divvi-server output kms_key_arn)."
  type        = string
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
