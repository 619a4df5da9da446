# jobs/kubernetes/ingestor.yaml as Terraform resources: a namespace with the restricted
# Pod Security Standard enforced, the IRSA service account, the config (ingestor.toml and
# the public task.json), the Service devices reach, a headless Service for the pods'
# metrics, a PodDisruptionBudget and the StatefulSet: each replica's write-ahead journal
# is its own volume claim, which outlives the pod (claims are kept on scale-down and
# delete: the StatefulSet default, Retain). The keys Secret is created outside Terraform.

locals {
  labels = {
    "app.kubernetes.io/name"    = "divvi"
    "app.kubernetes.io/part-of" = "divvi"
  }
  upload_labels = merge(local.labels, { "app.kubernetes.io/component" = "upload" })
  config_toml = templatefile("${path.module}/templates/ingestor.toml.tftpl", {
    signing_key_id    = var.signing_key_id
    servers           = var.servers
    packet_key_scheme = var.packet_key_scheme
  })
  env = {
    DIVVI_LOG_FORMAT          = "json"
    TMPDIR                    = "/tmp"
    AWS_REGION                = var.servers[0].region
    AWS_EC2_METADATA_DISABLED = "true"
  }
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
      "eks.amazonaws.com/role-arn" = aws_iam_role.upload.arn
    }
  }
  automount_service_account_token = false
}

resource "kubernetes_config_map_v1" "divvi" {
  metadata {
    name      = "divvi-ingestor-config"
    namespace = kubernetes_namespace_v1.divvi.metadata[0].name
    labels    = local.labels
  }
  data = {
    "ingestor.toml" = local.config_toml
    "task.json"     = var.task_json
  }
}

# What devices reach, behind your TLS ingress or load balancer.
resource "kubernetes_service_v1" "upload" {
  metadata {
    name      = "divvi-upload"
    namespace = kubernetes_namespace_v1.divvi.metadata[0].name
    labels    = local.upload_labels
  }
  spec {
    type     = "ClusterIP"
    selector = local.upload_labels
    port {
      name        = "http"
      port        = 80
      target_port = "http"
      protocol    = "TCP"
    }
  }
}

# The StatefulSet's governing Service: stable pod names, metrics scraping.
resource "kubernetes_service_v1" "pods" {
  metadata {
    name      = "divvi-upload-pods"
    namespace = kubernetes_namespace_v1.divvi.metadata[0].name
    labels    = local.upload_labels
  }
  spec {
    cluster_ip = "None"
    selector   = local.upload_labels
    port {
      name        = "metrics"
      port        = 9464
      target_port = "metrics"
      protocol    = "TCP"
    }
  }
}

resource "kubernetes_pod_disruption_budget_v1" "upload" {
  metadata {
    name      = "divvi-upload"
    namespace = kubernetes_namespace_v1.divvi.metadata[0].name
    labels    = local.upload_labels
  }
  spec {
    max_unavailable = "1"
    selector {
      match_labels = local.upload_labels
    }
  }
}

resource "kubernetes_stateful_set_v1" "upload" {
  metadata {
    name      = "divvi-upload"
    namespace = kubernetes_namespace_v1.divvi.metadata[0].name
    labels    = local.upload_labels
  }
  spec {
    service_name          = kubernetes_service_v1.pods.metadata[0].name
    replicas              = var.replicas
    pod_management_policy = "Parallel"
    selector {
      match_labels = local.upload_labels
    }
    template {
      metadata {
        labels = local.upload_labels
      }
      spec {
        service_account_name            = kubernetes_service_account_v1.divvi.metadata[0].name
        automount_service_account_token = false
        enable_service_links            = false
        # SIGTERM: stop accepting, finish requests (up to 30 s), seal and flush the journal.
        termination_grace_period_seconds = 120
        security_context {
          run_as_non_root = true
          run_as_user     = 65532
          run_as_group    = 65532
          fs_group        = 65532
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }
        container {
          name              = "upload"
          image             = var.image
          image_pull_policy = "IfNotPresent"
          args = ["serve", "--config", "/etc/divvi/ingestor.toml", "--task", "/etc/divvi/task.json",
            "--listen", "0.0.0.0:8080", "--journal", "/var/lib/divvi/journal", "--metrics-port", "9464",
            "--segment-seconds", tostring(var.segment_seconds),
          "--max-pending-segments", tostring(var.max_pending_segments)]
          dynamic "env" {
            for_each = local.env
            content {
              name  = env.key
              value = env.value
            }
          }
          port {
            name           = "http"
            container_port = 8080
            protocol       = "TCP"
          }
          port {
            name           = "metrics"
            container_port = 9464
            protocol       = "TCP"
          }
          readiness_probe {
            http_get {
              path = "/readyz"
              port = "http"
            }
            period_seconds    = 5
            failure_threshold = 2
          }
          liveness_probe {
            http_get {
              path = "/healthz"
              port = "http"
            }
            period_seconds    = 10
            failure_threshold = 6
          }
          resources {
            requests = {
              cpu                 = "1"
              memory              = "512Mi"
              "ephemeral-storage" = "256Mi"
            }
            limits = {
              cpu                 = "2"
              memory              = "1Gi"
              "ephemeral-storage" = "2Gi"
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
            mount_path = "/etc/divvi/ingestor.toml"
            sub_path   = "ingestor.toml"
            read_only  = true
          }
          volume_mount {
            name       = "config"
            mount_path = "/etc/divvi/task.json"
            sub_path   = "task.json"
            read_only  = true
          }
          volume_mount {
            name       = "keys"
            mount_path = "/etc/divvi/keys"
            read_only  = true
          }
          volume_mount {
            name       = "journal"
            mount_path = "/var/lib/divvi/journal"
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
            size_limit = "2Gi"
          }
        }
      }
    }
    volume_claim_template {
      metadata {
        name   = "journal"
        labels = local.upload_labels
      }
      spec {
        access_modes       = ["ReadWriteOnce"]
        storage_class_name = var.journal_storage_class
        resources {
          requests = {
            storage = var.journal_size
          }
        }
      }
    }
  }
}
