// Command rollout: see internal/cli.
package main

import (
	"os"

	"github.com/rollout-dev/rollout/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
