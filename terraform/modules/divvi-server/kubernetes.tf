# The jobs of jobs/kubernetes/server*.yaml, as Terraform resources: a namespace with
# the restricted Pod Security Standard enforced, the IRSA service account, the config,
# and per aggregation an intake CronJob (an Indexed Job of intake_parallelism pods), an
# aggregate CronJob and, when the server trusts a portal key, a passes CronJob (Poplar1
# heavy hitters). The keys Secret is created outside Terraform (variables.tf).

locals {
  labels = {
    "app.kubernetes.io/name"    = "divvi"
    "app.kubernetes.io/part-of" = "divvi"
  }
  config_toml = templatefile("${path.module}/templates/server.toml.tftpl", {
    server_index               = var.server_index
    instance                   = var.instance
    stash_key_file             = "server${var.server_index}-stash.key"
    buckets                    = local.buckets
    region                     = data.aws_region.current.region
    peer_inbox_bucket          = var.peer_inbox_bucket
    peer_inbox_writer_role_arn = var.peer_inbox_writer_role_arn
    signing_key_id             = var.signing_key_id
    packet_key_ids             = var.packet_key_ids
    packet_key_scheme          = var.packet_key_scheme
    trusted_ingestor_keys      = var.trusted_ingestor_keys
    trusted_peer_keys          = var.trusted_peer_keys
    trusted_portal_keys        = var.trusted_portal_keys
    min_clients                = var.min_clients
    dap_task                   = var.dap_task
  })
  common_env = merge(
    {
      DIVVI_LOG_FORMAT = "json"
      # Nothing to do or waiting exits 0; only a failure fails the Job (exit 1 is
      # retried, exit 2 is not: pod_failure_policy below).
      DIVVI_EXIT_CODES = "scheduler"
      TMPDIR           = "/tmp"
      AWS_REGION       = data.aws_region.current.region
      # If IRSA is misconfigured, fail instead of falling back to the node's role.
      AWS_EC2_METADATA_DISABLED = "true"
    },
    var.pushgateway_url == null ? {} : { DIVVI_PUSHGATEWAY = var.pushgateway_url },
    var.metrics_port == null ? {} : { DIVVI_METRICS_PORT = tostring(var.metrics_port) },
  )
  # One intake and one aggregate CronJob per aggregation, and one passes CronJob where
  # a portal may ask for passes (without its key every query would be refused).
  jobs = merge(
    { for a in var.aggregations : "intake-${a}" => {
      stage       = "intake"
      schedule    = var.intake_schedule
      pods        = var.intake_parallelism
      retries     = 3
      deadline    = 3600
      start_limit = 600
      args = ["intake", "--config", "/etc/divvi/server.toml", "--aggregation", a,
      "--pending", "--lookback", var.intake_lookback, "--incomplete-after", var.incomplete_after]
      env = { DIVVI_SHARD_COUNT = tostring(var.intake_parallelism) }
    } },
    { for a in var.aggregations : "aggregate-${a}" => {
      stage       = "aggregate"
      schedule    = var.aggregate_schedule
      pods        = 1
      retries     = 2
      deadline    = 3000
      start_limit = 1800
      args = ["aggregate", "--config", "/etc/divvi/server.toml", "--aggregation", a,
      "--pending", "--period", var.aggregation_period, "--grace", var.aggregation_grace]
      env = {}
    } },
    { for a in var.aggregations : "passes-${a}" => {
      stage       = "passes"
      schedule    = var.passes_schedule
      pods        = 1
      retries     = 2
      deadline    = 3600
      start_limit = 240
      args        = ["passes", "--config", "/etc/divvi/server.toml", "--aggregation", a, "--pending"]
      env         = {}
    } if length(var.trusted_portal_keys) > 0 },
  )
}

resource "kubernetes_namespace_v1" "divvi" {
  metadata {
    name = var.namespace
    labels = merge(local.labels, {
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
    })
  }
}

resource "kubernetes_service_account_v1" "divvi" {
  metadata {
    name      = local.service_account
    namespace = kubernetes_namespace_v1.divvi.metadata[0].name
    labels    = local.labels
    annotations = {
      "eks.amazonaws.com/role-arn" = aws_iam_role.job.arn
    }
  }
  # divvi never calls the Kubernetes API. (The IRSA token is a separate projected volume.)
  automount_service_account_token = false
}

resource "kubernetes_config_map_v1" "divvi" {
  metadata {
    name      = "divvi-config"
    namespace = kubernetes_namespace_v1.divvi.metadata[0].name
    labels    = local.labels
  }
  data = {
    "server.toml" = local.config_toml
  }
}

resource "kubernetes_cron_job_v1" "job" {
  for_each = local.jobs

  metadata {
    name      = "divvi-${each.key}"
    namespace = kubernetes_namespace_v1.divvi.metadata[0].name
    labels    = merge(local.labels, { "app.kubernetes.io/component" = each.value.stage })
  }
  spec {
    schedule = each.value.schedule
    timezone = "Etc/UTC"
    # Never two runs at once: a run still going when the next is due makes it skip.
    concurrency_policy            = "Forbid"
    starting_deadline_seconds     = each.value.start_limit
    successful_jobs_history_limit = 3
    failed_jobs_history_limit     = 5
    job_template {
      metadata {
        labels = local.labels
      }
      spec {
        # Intake: pod i of N takes the batches whose UUID is i mod N (JOB_COMPLETION_INDEX).
        completion_mode            = each.value.pods > 1 ? "Indexed" : "NonIndexed"
        completions                = each.value.pods
        parallelism                = each.value.pods
        backoff_limit              = each.value.retries
        active_deadline_seconds    = each.value.deadline
        ttl_seconds_after_finished = tostring(var.job_history_days * 86400)
        # divvi exits 2 for a usage or configuration error, which a retry would repeat:
        # the Job fails at once. A pod evicted or preempted (a node drain) is replaced
        # without using up a retry. Needs restart_policy Never (below).
        pod_failure_policy {
          rule {
            action = "FailJob"
            on_exit_codes {
              container_name = each.value.stage
              operator       = "In"
              values         = [2]
            }
          }
          rule {
            action = "Ignore"
            on_pod_condition {
              type   = "DisruptionTarget"
              status = "True"
            }
          }
        }
        template {
          metadata {
            labels = merge(local.labels, { "app.kubernetes.io/component" = each.value.stage })
          }
          spec {
            service_account_name            = kubernetes_service_account_v1.divvi.metadata[0].name
            automount_service_account_token = false
            enable_service_links            = false
            # A failed attempt keeps its pod and logs; the retry is a fresh pod.
            restart_policy = "Never"
            security_context {
              run_as_non_root = true
              run_as_user     = 65532
              run_as_group    = 65532
              fs_group        = 65532 # the Secret's files become group-readable for 65532
              seccomp_profile {
                type = "RuntimeDefault"
              }
            }
            container {
              name              = each.value.stage
              image             = var.image
              image_pull_policy = "IfNotPresent"
              args              = each.value.args
              dynamic "env" {
                for_each = merge(local.common_env, each.value.env)
                content {
                  name  = env.key
                  value = env.value
                }
              }
              # Basic-auth credentials for the Pushgateway, from a Secret (never in
              # the job's arguments).
              dynamic "env" {
                for_each = var.pushgateway_credentials_secret == null ? {} : {
                  DIVVI_PUSHGATEWAY_USERNAME = "username"
                  DIVVI_PUSHGATEWAY_PASSWORD = "password"
                }
                content {
                  name = env.key
                  value_from {
                    secret_key_ref {
                      name = var.pushgateway_credentials_secret
                      key  = env.value
                    }
                  }
                }
              }
              dynamic "port" {
                for_each = var.metrics_port == null ? [] : [var.metrics_port]
                content {
                  name           = "metrics"
                  container_port = port.value
                  protocol       = "TCP"
                }
              }
              resources {
                requests = {
                  cpu                 = var.job_resources.cpu
                  memory              = var.job_resources.memory
                  "ephemeral-storage" = "256Mi"
                }
                limits = {
                  cpu                 = var.job_resources.cpu
                  memory              = var.job_resources.memory
                  "ephemeral-storage" = "1Gi"
                }
              }
              security_context {
                run_as_non_root            = true
                run_as_user                = 65532
                run_as_group               = 65532
                read_only_root_filesystem  = true
                allow_privilege_escalation = false
                privileged                 = false
                capabilities {
                  drop = ["ALL"]
                }
                seccomp_profile {
                  type = "RuntimeDefault"
                }
              }
              volume_mount {
                name       = "config"
                mount_path = "/etc/divvi/server.toml"
                sub_path   = "server.toml"
                read_only  = true
              }
              volume_mount {
                name       = "keys"
                mount_path = "/etc/divvi/keys"
                read_only  = true
              }
              volume_mount {
                name       = "tmp"
                mount_path = "/tmp"
              }
            }
            volume {
              name = "config"
              config_map {
                name = kubernetes_config_map_v1.divvi.metadata[0].name
              }
            }
            volume {
              name = "keys"
              secret {
                secret_name  = var.keys_secret_name
                default_mode = "0400"
                optional     = false
              }
            }
            volume {
              name = "tmp"
              empty_dir {
                size_limit = "1Gi"
              }
            }
          }
        }
      }
    }
  }
}
