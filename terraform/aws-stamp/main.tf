# An AWS stamp for any partition. Nothing here names "aws" in an ARN or a service principal: the
# partition and its DNS suffix come from aws_partition, so the same module works in aws, aws-us-gov,
# aws-cn and aws-eusc. rollout sets AWS_REGION and the boundary's credentials.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

variable "app_version" { type = string }
variable "stamp" { type = string }
variable "region" { type = string }
variable "aws_partition" {
  type        = string
  description = "The partition the stamp must land in (rollout validate checks it against the boundary)."
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { release = var.app_version, stamp = var.stamp }
  }
}

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

check "partition" {
  assert {
    condition     = data.aws_partition.current.partition == var.aws_partition
    error_message = "This stamp is for partition ${var.aws_partition}, but the credentials are of ${data.aws_partition.current.partition}."
  }
}

resource "aws_s3_bucket" "artifacts" {
  bucket = "${var.stamp}-artifacts-${data.aws_caller_identity.current.account_id}"
}

resource "aws_iam_role" "app" {
  name = "${var.stamp}-app"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ec2.${data.aws_partition.current.dns_suffix}" }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "read_only" {
  role       = aws_iam_role.app.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/ReadOnlyAccess"
}

output "endpoint" {
  value = "https://${aws_s3_bucket.artifacts.bucket_regional_domain_name}"
}
