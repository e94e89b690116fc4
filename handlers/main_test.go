package handlers

import (
	"os"
	"testing"

	"certdesk/internal/identity"
)

func TestMain(m *testing.M) {
	// Sign-ins dominate this package's run time at production argon2id
	// cost; the hashing itself is not what these tests check.
	identity.UseFastHashingForTests()
	os.Exit(m.Run())
}
