variable "region" {
  description = "AWS region of both servers' buckets and clusters."
  type        = string
  default     = "us-west-2"
}

variable "pha" {
  description = "Server 0, the PHA: the AWS CLI profile that administers its account, its resource-name prefix, its EKS cluster, and its public key ids (from `divvi keygen`)."
  type = object({
    aws_profile    = string
    name           = string
    eks_cluster    = string
    signing_key_id = string
    packet_key_ids = list(string)
    public_key     = string # its signing public key, trusted by the facilitator
  })
}

variable "facilitator" {
  description = "Server 1, the facilitator: as for pha."
  type = object({
    aws_profile    = string
    name           = string
    eks_cluster    = string
    signing_key_id = string
    packet_key_ids = list(string)
    public_key     = string
  })
}

variable "instance" {
  description = "divvi instance name, the same on both servers."
  type        = string
}

variable "aggregations" {
  description = "Aggregations both servers run."
  type        = list(string)
  default     = ["exposure-notifications"]
}

variable "ingestor_keys" {
  description = "Public signing keys of the ingestors both servers trust."
  type        = list(object({ id = string, public_key = string }))
}

variable "ingestor_principal_arns" {
  description = "The ingestor's IAM principals, allowed to put batches into both ingestion buckets."
  type        = list(string)
}

variable "portal_principal_arns" {
  description = "The portal's IAM principals, allowed to read both servers' sum parts and to create the queries of heavy-hitters passes (.query objects) there."
  type        = list(string)
}

variable "portal_keys" {
  description = "Public signing keys of the portal, trusted by both servers for its heavy-hitters queries (Poplar1 tasks); non-empty adds the passes CronJobs. Empty for no heavy hitters."
  type        = list(object({ id = string, public_key = string }))
  default     = []
}

variable "packet_key_scheme" {
  description = "Packet encryption of both servers' packet keys: \"hpke\", or \"ecies\" for ENPA's app clients."
  type        = string
  default     = "hpke"
}

variable "min_clients" {
  description = "Fewest valid clients a sum part may have, on both servers."
  type        = number
  default     = 100
}

variable "image" {
  description = "divvi image pinned by digest (…@sha256:<64 hex>)."
  type        = string
}

variable "intake_parallelism" {
  description = "Intake pods per run on each server."
  type        = number
  default     = 4
}

variable "retention_days" {
  description = "Days objects are kept per bucket, on both servers."
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
}

variable "pushgateway_url" {
  description = "Pushgateway for the jobs' metrics, reachable from both clusters; null for none."
  type        = string
  default     = null
}
