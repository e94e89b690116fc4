package validation

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Default check rate: 10 checks per minute per domain, bursts of 5.
const (
	DefaultChecksPerMinute = 10
	DefaultCheckBurst      = 5
)

// Limiter limits how often checks run per domain, so a user (or a script)
// cannot make the portal hammer a domain's DNS or web server. Time is
// passed in explicitly, so tests use fixed times. Safe for concurrent use.
type Limiter struct {
	mu        sync.Mutex
	every     rate.Limit
	burst     int
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// NewLimiter allows events checks per period per domain, with bursts of
// burst. Non-positive values fall back to the defaults (10 per minute,
// burst 5).
func NewLimiter(events int, per time.Duration, burst int) *Limiter {
	if events <= 0 || per <= 0 {
		events, per = DefaultChecksPerMinute, time.Minute
	}
	if burst <= 0 {
		burst = DefaultCheckBurst
	}
	return &Limiter{
		every:   rate.Every(per / time.Duration(events)),
		burst:   burst,
		buckets: map[string]*bucket{},
	}
}

// Allow reports whether a check of domain may run at now, and counts it
// when it may. Domains are compared case-insensitively.
func (l *Limiter) Allow(domain string, now time.Time) bool {
	key := normName(domain)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.every, l.burst)}
		l.buckets[key] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}

// sweep forgets domains whose bucket has refilled completely (they behave
// exactly like new ones), at most once a minute.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Minute {
		return
	}
	l.lastSweep = now
	full := time.Duration(float64(l.burst) / float64(l.every) * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, k)
		}
	}
}

// Len returns how many domains the limiter currently remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
