package validation

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestResolverFromResolvConf(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(p, []byte("# test\nsearch example.test\nnameserver 127.0.0.53\nnameserver 127.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := resolverFromFile(p)
	if err != nil || got != "127.0.0.53:53" {
		t.Fatalf("resolverFromFile = %q, %v; want 127.0.0.53:53", got, err)
	}
	if _, err := resolverFromFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing resolv.conf must be an error")
	}
	if _, err := NewResolver("127.0.0.1", 0); err == nil {
		t.Fatal("an address without a port must be refused")
	}
}

func TestResolverLookups(t *testing.T) {
	z := startDNS(t,
		`www.example.test. 60 IN A 127.0.0.1`,
		`www.example.test. 60 IN AAAA ::1`,
		`alias.example.test. 60 IN CNAME www.example.test.`,
		`far.example.test. 60 IN CNAME alias.example.test.`,
		`loop1.example.test. 60 IN CNAME loop2.example.test.`,
		`loop2.example.test. 60 IN CNAME loop1.example.test.`,
		`multi.example.test. 60 IN TXT "part one " "part two"`,
	)
	z.NoChase("far.example.test")
	r, err := NewResolver(z.Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	ips, err := r.LookupIP(ctx, "far.example.test")
	want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
	if err != nil || !slices.Equal(ips, want) {
		t.Fatalf("LookupIP through two aliases = %v, %v; want %v", ips, err, want)
	}
	if tgt, err := r.LookupCNAME(ctx, "ALIAS.example.test."); err != nil || tgt != "www.example.test" {
		t.Fatalf("LookupCNAME = %q, %v", tgt, err)
	}
	if tgt, err := r.LookupCNAME(ctx, "www.example.test"); err != nil || tgt != "" {
		t.Fatalf("LookupCNAME of a non-alias = %q, %v; want empty", tgt, err)
	}
	if txt, err := r.LookupTXT(ctx, "multi.example.test"); err != nil || len(txt) != 1 || txt[0] != "part one part two" {
		t.Fatalf("LookupTXT joins strings of one record: %q, %v", txt, err)
	}
	if txt, err := r.LookupTXT(ctx, "nxdomain.example.test"); err != nil || len(txt) != 0 {
		t.Fatalf("NXDOMAIN must be no records and no error: %q, %v", txt, err)
	}
	_, err = r.LookupTXT(ctx, "loop1.example.test")
	var de *DNSError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("CNAME loop: err = %v; want a DNSError about the loop", err)
	}
}

func TestResolverTCPFallbackOnTruncation(t *testing.T) {
	var recs []string
	for i := 0; i < 30; i++ {
		recs = append(recs, fmt.Sprintf(`big.example.test. 60 IN TXT "filler-%02d-%s"`, i, strings.Repeat("x", 60)))
	}
	recs = append(recs, `big.example.test. 60 IN TXT "the-last-record"`)
	z := startDNS(t, recs...)
	r, _ := NewResolver(z.Addr, time.Second)
	txt, err := r.LookupTXT(context.Background(), "big.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(txt) != 31 || !slices.Contains(txt, "the-last-record") {
		t.Fatalf("got %d TXT records; want all 31 over TCP", len(txt))
	}
	if z.udpQueries.Load() != 1 || z.tcpQueries.Load() != 1 {
		t.Fatalf("queries udp=%d tcp=%d; want one of each (UDP truncated, then TCP)", z.udpQueries.Load(), z.tcpQueries.Load())
	}
}

func TestResolverFailures(t *testing.T) {
	z := startDNS(t)
	z.ServFail("broken.example.test")
	z.Drop("silent.example.test")
	r, _ := NewResolver(z.Addr, 200*time.Millisecond)
	_, err := r.LookupCAA(context.Background(), "broken.example.test")
	var de *DNSError
	if !errors.As(err, &de) || de.Rcode != "SERVFAIL" {
		t.Fatalf("SERVFAIL: err = %v; want DNSError with Rcode SERVFAIL", err)
	}
	start := time.Now()
	_, err = r.LookupCAA(context.Background(), "silent.example.test")
	if !errors.As(err, &de) || de.Err == nil {
		t.Fatalf("no answer: err = %v; want DNSError with a transport error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v; want about 200ms", d)
	}
}
