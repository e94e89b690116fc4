package identity

import (
	"strings"
	"testing"
)

func TestHashAndCheck(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=3,p=2$") {
		t.Fatalf("production parameters not used: %s", h)
	}
	if !CheckPassword(h, "correct horse battery staple") || CheckPassword(h, "correct horse battery stapl") {
		t.Fatal("check wrong")
	}
	h2, _ := HashPassword("correct horse battery staple")
	if h == h2 {
		t.Fatal("no salt")
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$x$y$z$w", h[:len(h)-4]} {
		if CheckPassword(bad, "x") {
			t.Fatalf("accepted %q", bad)
		}
	}
}

func TestGeneratePassword(t *testing.T) {
	a, b := GeneratePassword(), GeneratePassword()
	if len(a) != 20 || a == b || len(a) < MinPasswordLength {
		t.Fatalf("%q %q", a, b)
	}
}
