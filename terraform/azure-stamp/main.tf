# An Azure stamp for any Azure cloud: the provider is told which cloud by `environment` (and by
# ARM_ENVIRONMENT / ARM_METADATA_HOSTNAME, which rollout sets from the target's boundary).
terraform {
  required_version = ">= 1.6"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.0"
    }
  }
}

variable "app_version" { type = string }
variable "stamp" { type = string }
variable "location" { type = string }
variable "azure_environment" {
  type        = string
  description = "public, usgovernment or china: must match the target's boundary (rollout validate checks)."
}

provider "azurerm" {
  features {}
  environment = var.azure_environment
  use_oidc    = true
  # Tenant, client and subscription come from ARM_TENANT_ID, ARM_CLIENT_ID, ARM_SUBSCRIPTION_ID.
}

resource "azurerm_resource_group" "stamp" {
  name     = "rg-${var.stamp}"
  location = var.location
  tags     = { release = var.app_version }
}

resource "azurerm_storage_account" "artifacts" {
  name                     = substr(replace("st${var.stamp}", "-", ""), 0, 24)
  resource_group_name      = azurerm_resource_group.stamp.name
  location                 = azurerm_resource_group.stamp.location
  account_tier             = "Standard"
  account_replication_type = "ZRS"
  tags                     = { release = var.app_version }
}

output "endpoint" {
  # The blob endpoint carries the cloud's own suffix: blob.core.usgovcloudapi.net, blob.core.chinacloudapi.cn.
  value = azurerm_storage_account.artifacts.primary_blob_endpoint
}
