// Package e2e drives the real rollout binary against real OpenTofu (or Terraform) on temporary
// fleets. Its tests are built only with the e2e build tag: `make test-e2e` gives it, and sets the
// binary and provider mirror from make tools (`go test ./...` alone reports no test files here,
// rather than an "ok" for tests it did not run).
package e2e
