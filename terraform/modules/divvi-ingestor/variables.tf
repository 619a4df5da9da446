# The ingestor's upload server (divvi serve): who it is, where it writes, how it runs.

variable "name" {
  description = "Prefix of the ingestor's IAM role, e.g. \"my-app-divvi\"."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,38}[a-z0-9]$", var.name))
    error_message = "The name must be 4 to 40 lowercase letters, digits and hyphens."
  }
}

variable "servers" {
  description = "Both servers' ingestion buckets, each with the put-only role that server grants the ingestor (modules/bucket-access, access = \"put\") and its packet key (id and public key, from divvi keygen's ingestor.toml). Server 0 first."
  type = list(object({
    ingestion_bucket  = string
    region            = string
    put_role_arn      = string
    packet_key_id     = string
    packet_public_key = string
  }))
  validation {
    condition     = length(var.servers) == 2
    error_message = "Exactly two servers: server 0 (PHA) and server 1 (facilitator)."
  }
  validation {
    condition     = alltrue([for s in var.servers : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", s.put_role_arn))])
    error_message = "Each put_role_arn must be an IAM role ARN."
  }
}

variable "packet_key_scheme" {
  description = "Scheme of the servers' packet keys (\"hpke\" or \"ecies\"), as in divvi keygen's ingestor.toml."
  type        = string
  default     = "hpke"
  validation {
    condition     = contains(["hpke", "ecies"], var.packet_key_scheme)
    error_message = "The packet_key_scheme must be hpke or ecies."
  }
}

variable "signing_key_id" {
  description = "Id of the ingestor's signing key; the Secret holds it as <id>.key."
  type        = string
  default     = "ingestor-signing"
}

variable "task_json" {
  description = "The DAP task's public file (task.json from divvi keygen --vdaf): the HPKE configs clients fetch come from it."
  type        = string
  validation {
    condition     = can(jsondecode(var.task_json))
    error_message = "The task_json must be the JSON text of the task file."
  }
}

variable "eks_oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (IRSA)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/", var.eks_oidc_provider_arn))
    error_message = "The eks_oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "eks_oidc_issuer" {
  description = "The cluster's OIDC issuer URL (with or without https://)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the upload server (created by the module)."
  type        = string
  default     = "divvi-ingestor"
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "The namespace must be a DNS label."
  }
}

variable "image" {
  description = "divvi container image, pinned by digest: registry/divvi@sha256:<64 hex>."
  type        = string
  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image))
    error_message = "The image must be pinned by digest (…@sha256:<64 hex digits>), so every pod runs the same build."
  }
}

variable "replicas" {
  description = "Upload server pods, each with its own journal volume."
  type        = number
  default     = 2
  validation {
    condition     = var.replicas >= 1
    error_message = "At least one replica."
  }
}

variable "journal_storage_class" {
  description = "StorageClass of each replica's journal volume (local or block storage that honours fsync)."
  type        = string
  default     = "gp3"
}

variable "journal_size" {
  description = "Size of each replica's journal volume."
  type        = string
  default     = "20Gi"
}

variable "segment_seconds" {
  description = "A journal segment is flushed into batches once it is this old (or holds 64 MiB)."
  type        = number
  default     = 60
}

variable "max_pending_segments" {
  description = "Sealed segments that may wait for storage before uploads are answered 503 and the pod is not ready."
  type        = number
  default     = 16
  validation {
    condition     = var.max_pending_segments >= 1
    error_message = "At least one segment may wait."
  }
}

variable "tags" {
  description = "Tags for every AWS resource."
  type        = map(string)
  default     = {}
}

variable "keys_secret_name" {
  description = "Kubernetes Secret holding the ingestor's signing key as <signing_key_id>.key, created outside Terraform (kubectl create secret generic ... --from-file=...): key material never enters Terraform state."
  type        = string
  default     = "divvi-ingestor-keys"
}
