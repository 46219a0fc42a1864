package clouds

// SetEnviron replaces what BaseEnv lists as the process environment; it returns what undoes it.
func SetEnviron(f func(Lookup) []string) func() {
	orig := environ
	environ = f
	return func() { environ = orig }
}
