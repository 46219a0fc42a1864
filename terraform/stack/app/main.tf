# The application tier: its version is the release's name; it reads the data tier's endpoint.
variable "db_endpoint" { type = string }
variable "app_version" { type = string }
resource "terraform_data" "app" { input = "${var.app_version}|${var.db_endpoint}" }
output "version" { value = var.app_version }
output "endpoint" { value = "https://app.example/${var.app_version}" }
