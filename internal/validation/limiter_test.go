package validation

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	l := NewLimiter(10, time.Minute, 5) // one token every 6 s, burst 5
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		if !l.Allow("example.com", t0) {
			t.Fatalf("check %d of the burst refused", i+1)
		}
	}
	if l.Allow("example.com", t0) {
		t.Fatal("6th check at the same instant allowed")
	}
	if l.Allow("EXAMPLE.com.", t0.Add(5*time.Second)) {
		t.Fatal("same domain in other case allowed before a token refilled")
	}
	if !l.Allow("other.example", t0) {
		t.Fatal("another domain must have its own budget")
	}
	if !l.Allow("example.com", t0.Add(6*time.Second)) {
		t.Fatal("one check must be allowed after 6 s")
	}
	if l.Allow("example.com", t0.Add(6*time.Second)) {
		t.Fatal("only one token refills in 6 s")
	}
	// Sustained: over 10 minutes at most 5 + 100 checks pass.
	n := 0
	for s := 0; s < 600; s++ {
		if l.Allow("busy.example", t0.Add(time.Duration(s)*time.Second)) {
			n++
		}
	}
	if n < 100 || n > 105 {
		t.Fatalf("%d checks allowed in 10 minutes at one per second; want about 105", n)
	}
	// Idle domains are forgotten once their bucket is full again.
	l.Allow("late.example", t0.Add(time.Hour))
	if got := l.Len(); got != 1 {
		t.Fatalf("limiter remembers %d domains after an hour; want 1", got)
	}
}
