# A stamp: one copy of the service in one place. It "deploys" the stand-in application by writing
# what runs there (version, health) to deploy_dir/<target>.json, which the demo's HTTP service
# reads; a real stamp would create cloud resources instead.
terraform {
  required_version = ">= 1.6"
  required_providers {
    time = {
      source  = "hashicorp/time"
      version = "0.14.2"
    }
  }
}

variable "app_version" {
  type        = string
  description = "The release being deployed."
}

variable "target" {
  type        = string
  description = "The target (stamp) name."
}

variable "tier" {
  type        = string
  default     = ""
  description = "The target's tier label."
}

variable "deploy_dir" {
  type        = string
  description = "Where the stand-in application reads what is deployed (an absolute path)."
}

variable "service_url" {
  type        = string
  default     = "http://127.0.0.1:8080"
  description = "The base URL of the stand-in application."
}

variable "fault_tier" {
  type        = string
  default     = ""
  description = "Simulates a faulty release: targets of this tier come up unhealthy."
}

variable "apply_seconds" {
  type        = number
  default     = 0
  description = "Simulates a slow deployment: the apply takes this many more seconds."
}

locals {
  healthy = var.fault_tier == "" || var.fault_tier != var.tier
  state = jsonencode({
    version = var.app_version
    healthy = local.healthy
    target  = var.target
  })
}

resource "time_static" "deployed" {
  triggers = {
    version = var.app_version
  }
}

resource "terraform_data" "app" {
  triggers_replace = [var.app_version, local.healthy]
  input            = local.state

  provisioner "local-exec" {
    command = "sleep ${var.apply_seconds} && mkdir -p '${var.deploy_dir}' && printf '%s' '${local.state}' > '${var.deploy_dir}/${var.target}.json.tmp' && mv '${var.deploy_dir}/${var.target}.json.tmp' '${var.deploy_dir}/${var.target}.json'"
  }
}

output "endpoint" {
  value = "${var.service_url}/stamps/${var.target}"
}

output "version" {
  value = var.app_version
}

output "deployed_at" {
  value = time_static.deployed.rfc3339
}
