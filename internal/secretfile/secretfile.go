// Package secretfile reads files that hold a secret (a token file, a client secret, a private
// key), refusing one that other users may read: a secret left readable is not used.
package secretfile

import (
	"fmt"
	"os"
)

// Check refuses path unless only its owner may read or write it.
func Check(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by others (mode %v): it holds a secret; chmod 600 it", path, st.Mode().Perm())
	}
	return nil
}

// Read reads path after Check.
func Read(path string) ([]byte, error) {
	if err := Check(path); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}
