# The data tier: placed in the network tier's subnet; its endpoint is what the application reads.
variable "subnet_id" { type = string }
resource "terraform_data" "db" {
  input            = "db@${var.subnet_id}"
  triggers_replace = [var.subnet_id]
}
output "endpoint" { value = "pg://${terraform_data.db.output}" }
