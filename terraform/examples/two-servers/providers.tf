# Each server is its own organisation with its own AWS account and EKS cluster; this
# example applies both from one place (in practice each applies its own half and they
# exchange the role ARNs and bucket names wired between the modules below).

provider "aws" {
  alias   = "pha"
  region  = var.region
  profile = var.pha.aws_profile
}

provider "aws" {
  alias   = "facilitator"
  region  = var.region
  profile = var.facilitator.aws_profile
}

data "aws_eks_cluster" "pha" {
  provider = aws.pha
  name     = var.pha.eks_cluster
}

data "aws_eks_cluster" "facilitator" {
  provider = aws.facilitator
  name     = var.facilitator.eks_cluster
}

data "aws_iam_openid_connect_provider" "pha" {
  provider = aws.pha
  url      = data.aws_eks_cluster.pha.identity[0].oidc[0].issuer
}

data "aws_iam_openid_connect_provider" "facilitator" {
  provider = aws.facilitator
  url      = data.aws_eks_cluster.facilitator.identity[0].oidc[0].issuer
}

provider "kubernetes" {
  alias                  = "pha"
  host                   = data.aws_eks_cluster.pha.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.pha.certificate_authority[0].data)
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", var.pha.eks_cluster, "--region", var.region, "--profile", var.pha.aws_profile]
  }
}

provider "kubernetes" {
  alias                  = "facilitator"
  host                   = data.aws_eks_cluster.facilitator.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.facilitator.certificate_authority[0].data)
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", var.facilitator.eks_cluster, "--region", var.region, "--profile", var.facilitator.aws_profile]
  }
}
