package clouds

// Starter is a cloud that can write a starter fleet's boundaries (rollout init): each family
// knows its scopes (AWS partitions, Azure environments, Google universes), a region of each, and
// the identity keys a person fills in.
type Starter interface {
	// Scopes are the scopes a starter boundary may name, the commercial one first.
	Scopes() []string
	// StarterBoundary is a boundary of scope for a new fleet.
	StarterBoundary(scope, name string) StarterBoundary
}

// StarterBoundary is one boundary of a starter fleet: its keys as YAML lines (indented under the
// boundary's name by the caller), a region of it for its first targets, and what a person must
// fill in or set before preflight and start can prove its identity.
type StarterBoundary struct {
	YAML   []string
	Region string
	Todo   string
}
