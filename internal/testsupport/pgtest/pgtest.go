// Package pgtest gives tests a fresh PostgreSQL database on the server named by
// ROLLOUT_TEST_POSTGRES (make test starts a throw-away one).
package pgtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

var seq atomic.Int64

// URL returns the server's URL, or "" when none is configured; with ROLLOUT_REQUIRE_POSTGRES=1
// a missing server fails the test instead.
func URL(t testing.TB) string {
	u := os.Getenv("ROLLOUT_TEST_POSTGRES")
	if u == "" && os.Getenv("ROLLOUT_REQUIRE_POSTGRES") == "1" {
		t.Fatal("ROLLOUT_TEST_POSTGRES is not set (make test runs the suite with a throw-away PostgreSQL)")
	}
	return u
}

// FreshDatabase creates an empty database for one test and returns its URL.
func FreshDatabase(t testing.TB, admin string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("rollout_test_%d_%d", os.Getpid(), seq.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(admin, "/postgres?") {
		t.Fatalf("ROLLOUT_TEST_POSTGRES should name the postgres database (…/postgres?…), got %s", admin)
	}
	return strings.Replace(admin, "/postgres?", "/"+name+"?", 1)
}
