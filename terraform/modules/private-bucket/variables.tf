variable "name" {
  description = "Bucket name (globally unique)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.name))
    error_message = "A bucket name is 3 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit."
  }
}

variable "kms_key_arn" {
  description = "KMS key every object is encrypted with (SSE-KMS, bucket key on)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN."
  }
}

variable "retention_days" {
  description = "Objects expire this many days after they were written; old versions (overwritten objects) this many days after they were replaced."
  type        = number
  validation {
    condition     = var.retention_days >= 1 && var.retention_days == floor(var.retention_days)
    error_message = "The retention_days must be a whole number of days, at least 1."
  }
}

variable "short_lived" {
  description = "Key prefixes whose objects expire after their own number of days (before retention_days); none by default."
  type = list(object({
    prefix = string
    days   = number
  }))
  default = []
  validation {
    condition     = alltrue([for r in var.short_lived : length(r.prefix) > 0 && r.days >= 1 && r.days == floor(r.days)])
    error_message = "Each short_lived prefix must not be empty (that is every object) and its days a whole number, at least 1."
  }
  validation {
    condition     = length(distinct([for r in var.short_lived : r.prefix])) == length(var.short_lived)
    error_message = "Each short_lived prefix may appear once."
  }
}

variable "access_log_bucket" {
  description = "Name of the bucket that receives this bucket's S3 server access logs."
  type        = string
}

variable "access_log_prefix" {
  description = "Key prefix of this bucket's access logs in access_log_bucket."
  type        = string
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete a bucket that still holds objects. Leave false in production."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the bucket."
  type        = map(string)
  default     = {}
}
