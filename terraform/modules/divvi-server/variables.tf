# --- Who this server is ---------------------------------------------------------------

variable "name" {
  description = "Prefix of every bucket, role and key alias of this server, e.g. \"my-pha-divvi\". Bucket names are global: include your organisation."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,38}[a-z0-9]$", var.name))
    error_message = "The name must be 4 to 40 lowercase letters, digits and hyphens (it prefixes bucket names)."
  }
}

variable "server_index" {
  description = "0 for the PHA (decides which batches a window sums), 1 for the facilitator."
  type        = number
  validation {
    condition     = contains([0, 1], var.server_index)
    error_message = "The server_index must be 0 (PHA) or 1 (facilitator)."
  }
}

variable "instance" {
  description = "divvi instance name, the first part of sum-part names. The same on both servers."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$", var.instance))
    error_message = "The instance must be 1 to 63 letters, digits, '_' or '-', starting with a letter or digit."
  }
}

variable "aggregations" {
  description = "Aggregations (metrics) this server processes; each gets an intake and an aggregate CronJob (and a passes CronJob with trusted_portal_keys)."
  type        = list(string)
  validation {
    condition     = length(var.aggregations) > 0 && alltrue([for a in var.aggregations : can(regex("^[a-z0-9][a-z0-9-]{0,35}$", a))])
    error_message = "The aggregations must be non-empty; each is 1 to 36 lowercase letters, digits and '-' (CronJob names are at most 52 characters)."
  }
}

# --- The peer ---------------------------------------------------------------------------

variable "peer_job_role_arn" {
  description = "The peer server's job role. It may assume this server's inbox-writer role, which can only put objects into this server's peer inbox."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.peer_job_role_arn))
    error_message = "The peer_job_role_arn must be an IAM role ARN."
  }
}

variable "peer_inbox_bucket" {
  description = "Name of the peer's inbox bucket, where this server writes its validation batches (and, as server 0, its run manifests)."
  type        = string
}

variable "peer_inbox_writer_role_arn" {
  description = "The role the peer granted for writing into its inbox; this server's job role may assume it and nothing else of the peer's."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.peer_inbox_writer_role_arn))
    error_message = "The peer_inbox_writer_role_arn must be an IAM role ARN."
  }
}

# --- Trust (public keys only) -----------------------------------------------------------

variable "signing_key_id" {
  description = "Key id of this server's signing key (as `divvi keygen` wrote it)."
  type        = string
}

variable "packet_key_ids" {
  description = "Key ids of this server's packet decryption keys, newest first; one file each in the keys Secret, named <id>.key. Keep an old key while its batches are pending."
  type        = list(string)
  validation {
    condition     = length(var.packet_key_ids) > 0
    error_message = "At least one packet key id is needed."
  }
}

variable "packet_key_scheme" {
  description = "Packet encryption scheme of the packet keys: \"hpke\" or \"ecies\" (ENPA's)."
  type        = string
  default     = "hpke"
  validation {
    condition     = contains(["hpke", "ecies"], var.packet_key_scheme)
    error_message = "The packet_key_scheme must be \"hpke\" or \"ecies\"."
  }
}

variable "trusted_ingestor_keys" {
  description = "Public signing keys of the ingestors whose batches this server accepts."
  type        = list(object({ id = string, public_key = string }))
  validation {
    condition     = length(var.trusted_ingestor_keys) > 0
    error_message = "At least one trusted ingestor key is needed."
  }
}

variable "trusted_peer_keys" {
  description = "Public signing keys of the peer server."
  type        = list(object({ id = string, public_key = string }))
  validation {
    condition     = length(var.trusted_peer_keys) > 0
    error_message = "At least one trusted peer key is needed."
  }
}

variable "trusted_portal_keys" {
  description = "Public signing keys of the portal, whose queries for heavy-hitters passes (Poplar1 tasks) this server runs. Non-empty also adds a passes CronJob per aggregation; empty (the default) for a server without a Poplar1 task."
  type        = list(object({ id = string, public_key = string }))
  default     = []
}

variable "keys_secret_name" {
  description = "Kubernetes Secret (in the namespace) holding this server's key files as `divvi keygen` names them: <signing_key_id>.key, <packet key id>.key for each packet key, and server<index>-stash.key; with dap_task also the DAP task's task.json (public, carried here so no mount changes), server<index>-hpke.key and verify.key. Created from keygen's files, never by Terraform (its state would hold the keys in clear)."
  type        = string
  default     = "divvi-keys"
}

variable "dap_task" {
  description = "Whether this server takes part in the DAP task `divvi keygen --vdaf` made (DAP-18, or DAP-09 with --dap-version 09): adds a [dap] section to server.toml naming keys/task.json, keys/server<index>-hpke.key and keys/verify.key, which the keys Secret must then hold. Off: an ENPA-only server, unchanged."
  type        = bool
  default     = false
}

variable "min_clients" {
  description = "Fewest valid clients a sum part may have; below it no sum part is written."
  type        = number
  default     = 100
  validation {
    condition     = var.min_clients >= 1 && var.min_clients == floor(var.min_clients)
    error_message = "The min_clients must be a whole number, at least 1."
  }
}

# --- Storage ----------------------------------------------------------------------------

variable "retention_days" {
  description = "Days objects are kept, per bucket. Ingestion and peer inbox hold inputs; own holds validations, run records and the replay set (keep it at least as long as replays matter), while its share stashes expire with peer_inbox, whose validations they pair with; sum_parts what the portal reads."
  type = object({
    ingestion   = number
    own         = number
    peer_inbox  = number
    sum_parts   = number
    access_logs = number
  })
  default = {
    ingestion   = 30
    own         = 400
    peer_inbox  = 30
    sum_parts   = 90
    access_logs = 400
  }
  validation {
    condition     = alltrue([for d in values(var.retention_days) : d >= 1 && d == floor(d)])
    error_message = "Each retention is a whole number of days, at least 1."
  }
  validation {
    condition     = var.retention_days.own >= var.retention_days.ingestion
    error_message = "The retention_days.own must be at least retention_days.ingestion: the replay set must outlive the batches it guards against."
  }
}

variable "round_state_days" {
  description = "Days a Poplar1 pass's round states (the own bucket's rounds/ prefix) are kept: longer than a pass can take from its round one to its sum part, on both servers."
  type        = number
  default     = 2
  validation {
    condition     = var.round_state_days >= 1 && var.round_state_days == floor(var.round_state_days)
    error_message = "The round_state_days must be a whole number of days, at least 1."
  }
}

variable "kms_deletion_window_days" {
  description = "Days a deleted KMS key can still be restored (7 to 30)."
  type        = number
  default     = 30
  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30
    error_message = "The kms_deletion_window_days must be between 7 and 30."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete buckets that still hold objects. For test deployments only."
  type        = bool
  default     = false
}

# --- The cluster and the jobs -------------------------------------------------------------

variable "eks_oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider (IRSA)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/", var.eks_oidc_provider_arn))
    error_message = "The eks_oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "eks_oidc_issuer" {
  description = "The cluster's OIDC issuer URL (with or without https://), e.g. https://oidc.eks.us-west-2.amazonaws.com/id/EXAMPLE."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of this server's jobs (created by the module)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "The namespace must be a DNS label."
  }
}

variable "image" {
  description = "divvi container image, pinned by digest: registry/divvi@sha256:<64 hex> (optionally with a tag before the @)."
  type        = string
  validation {
    condition     = can(regex("@sha256:[0-9a-f]{64}$", var.image))
    error_message = "The image must be pinned by digest (…@sha256:<64 hex digits>), so every pod runs the same build."
  }
}

variable "intake_schedule" {
  description = "Cron schedule (UTC) of intake."
  type        = string
  default     = "3-59/15 * * * *"
}

variable "aggregate_schedule" {
  description = "Cron schedule (UTC) of aggregate. Server 1's should run a little after server 0's, which decides each window."
  type        = string
  default     = "30 6-23 * * *"
}

variable "passes_schedule" {
  description = "Cron schedule (UTC) of passes (with trusted_portal_keys). Each pass takes a few runs of both servers; server 1's a few minutes after server 0's lets each find the other's latest round."
  type        = string
  default     = "1-59/5 * * * *"
}

variable "intake_parallelism" {
  description = "Intake pods per run (an Indexed Job; pod i takes the batches whose UUID is i mod N). Each pod needs job_resources.cpu."
  type        = number
  default     = 4
  validation {
    condition     = var.intake_parallelism >= 1 && var.intake_parallelism <= 64 && var.intake_parallelism == floor(var.intake_parallelism)
    error_message = "The intake_parallelism must be a whole number from 1 to 64."
  }
}

variable "intake_lookback" {
  description = "How far back intake looks for batches without a validation (divvi duration: 72h, 3d…)."
  type        = string
  default     = "72h"
  validation {
    condition     = can(regex("^[0-9]+[smhd]$", var.intake_lookback))
    error_message = "The intake_lookback must be a number followed by s, m, h or d."
  }
}

variable "incomplete_after" {
  description = "A batch still missing an object after this long is reported as overdue."
  type        = string
  default     = "2h"
  validation {
    condition     = can(regex("^[0-9]+[smhd]$", var.incomplete_after))
    error_message = "The incomplete_after must be a number followed by s, m, h or d."
  }
}

variable "aggregation_period" {
  description = "Length of an aggregation window (aligned to the Unix epoch, UTC)."
  type        = string
  default     = "1d"
  validation {
    condition     = can(regex("^[0-9]+[smhd]$", var.aggregation_period))
    error_message = "The aggregation_period must be a number followed by s, m, h or d."
  }
}

variable "aggregation_grace" {
  description = "How long after a window closes it is aggregated (time for late batches and both intakes)."
  type        = string
  default     = "6h"
  validation {
    condition     = can(regex("^[0-9]+[smhd]$", var.aggregation_grace))
    error_message = "The aggregation_grace must be a number followed by s, m, h or d."
  }
}

variable "job_resources" {
  description = "CPU and memory each job pod requests (and is limited to). Intake keeps 2 CPUs busy; peak RSS in the benchmarks was under 100 MiB."
  type        = object({ cpu = string, memory = string })
  default     = { cpu = "2", memory = "512Mi" }
}

variable "job_history_days" {
  description = "Days finished Jobs (and their pods' logs) are kept in the cluster."
  type        = number
  default     = 2
  validation {
    condition     = var.job_history_days >= 0 && var.job_history_days <= 30
    error_message = "The job_history_days must be between 0 and 30."
  }
}

variable "pushgateway_url" {
  description = "Prometheus Pushgateway the jobs push their metrics to when they end; null for none."
  type        = string
  default     = null
}

variable "pushgateway_credentials_secret" {
  description = "Kubernetes Secret (keys username and password) with basic-auth credentials for an https:// Pushgateway; null for none."
  type        = string
  default     = null
  validation {
    condition     = var.pushgateway_credentials_secret == null ? true : can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.pushgateway_credentials_secret))
    error_message = "The pushgateway_credentials_secret must be a Kubernetes Secret name (lower-case letters, digits, '-', '.')."
  }
}

variable "metrics_port" {
  description = "Port on which each job pod serves Prometheus /metrics while it runs (for a PodMonitor); null for none."
  type        = number
  default     = 9464
  validation {
    condition     = var.metrics_port == null ? true : (var.metrics_port >= 1024 && var.metrics_port <= 65535)
    error_message = "The metrics_port must be between 1024 and 65535 (the pods run as non-root), or null."
  }
}

variable "tags" {
  description = "Tags for every AWS resource."
  type        = map(string)
  default     = {}
}
