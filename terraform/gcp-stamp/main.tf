# A Google Cloud stamp for any universe: universe_domain tells the provider which one (rollout also
# sets GOOGLE_CLOUD_UNIVERSE_DOMAIN, GOOGLE_APPLICATION_CREDENTIALS and GOOGLE_REGION per boundary).
terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
  }
}

variable "app_version" { type = string }
variable "stamp" { type = string }
variable "region" { type = string }
variable "project" { type = string }
variable "universe_domain" {
  type        = string
  description = "googleapis.com or a sovereign universe such as s3nsapis.fr (rollout validate checks it against the boundary)."
}

provider "google" {
  project         = var.project
  region          = var.region
  universe_domain = var.universe_domain
}

resource "google_storage_bucket" "artifacts" {
  name                        = "${var.stamp}-artifacts"
  location                    = upper(var.region)
  uniform_bucket_level_access = true
  labels                      = { release = replace(var.app_version, ".", "-") }
}

output "endpoint" {
  value = google_storage_bucket.artifacts.url
}
