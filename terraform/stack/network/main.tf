# The network tier of the example stack (release.components): a stand-in resource whose
# identity depends on the target and its address range, and the subnet the next tier reads.
variable "target" { type = string }
variable "cidr" {
  type    = string
  default = "10.0.0.0/16"
}
resource "terraform_data" "vnet" { input = "${var.target}/${var.cidr}" }
output "subnet_id" { value = "subnet-${terraform_data.vnet.output}" }
