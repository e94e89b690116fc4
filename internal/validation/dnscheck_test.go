package validation

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func newTestChecker(t *testing.T, z *testDNS, mod func(*Config)) *Checker {
	t.Helper()
	cfg := Config{Resolver: z.Addr, DNSTimeout: 300 * time.Millisecond, CAAIdentities: []string{"certdesk.example"}}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const rv = "k3PqV0c5Yh1sQm2Zb7TnRw" // a random value as the portal would hand out

func TestCheckDNSTXT(t *testing.T) {
	z := startDNS(t,
		`apex.example.test. 60 IN TXT "v=spf1 -all"`,
		`apex.example.test. 60 IN TXT " `+rv+` "`,
		`under.example.test. 60 IN A 192.0.2.1`,
		`_dnsauth.under.example.test. 60 IN TXT "`+rv+`"`,
		`wrong.example.test. 60 IN TXT "v=spf1 -all"`,
		`_dnsauth.wrong.example.test. 60 IN TXT "an-old-value"`,
		`deleg.example.test. 60 IN A 192.0.2.1`,
		`_dnsauth.deleg.example.test. 60 IN CNAME deleg.dcv-provider.test.`,
		`deleg.dcv-provider.test. 60 IN TXT "`+rv+`"`,
		`prefix.example.test. 60 IN TXT "certdesk=`+rv+`"`,
	)
	z.NoChase("_dnsauth.deleg.example.test")
	c := newTestChecker(t, z, nil)
	ctx := context.Background()

	t.Run("apex", func(t *testing.T) {
		r, err := c.CheckDNSTXT(ctx, "Apex.Example.Test.", rv)
		if err != nil || !r.OK {
			t.Fatalf("got %+v, %v; want OK", r, err)
		}
		if len(r.Found) != 2 || !strings.Contains(r.Detail, "apex.example.test") || r.Method != MethodDNSTXT {
			t.Fatalf("result does not describe what was found: %+v", r)
		}
	})
	t.Run("underscore label", func(t *testing.T) {
		r, err := c.CheckDNSTXT(ctx, "under.example.test", rv)
		if err != nil || !r.OK || !strings.Contains(r.Detail, "_dnsauth.under.example.test") {
			t.Fatalf("got %+v, %v; want OK at _dnsauth", r, err)
		}
	})
	t.Run("underscore label delegated by CNAME", func(t *testing.T) {
		r, err := c.CheckDNSTXT(ctx, "deleg.example.test", rv)
		if err != nil || !r.OK {
			t.Fatalf("got %+v, %v; want OK through the CNAME", r, err)
		}
	})
	t.Run("wrong value lists what was found", func(t *testing.T) {
		r, err := c.CheckDNSTXT(ctx, "wrong.example.test", rv)
		if err != nil || r.OK {
			t.Fatalf("got %+v, %v; want not OK, no error", r, err)
		}
		want := []string{`wrong.example.test: "v=spf1 -all"`, `_dnsauth.wrong.example.test: "an-old-value"`}
		if !slices.Equal(r.Found, want) {
			t.Fatalf("Found = %q; want %q", r.Found, want)
		}
		if !strings.Contains(r.Expected, rv) || !strings.Contains(r.Expected, "_dnsauth.wrong.example.test") {
			t.Fatalf("Expected = %q; should name the value and both places", r.Expected)
		}
	})
	t.Run("value inside a longer record does not count", func(t *testing.T) {
		r, err := c.CheckDNSTXT(ctx, "prefix.example.test", rv)
		if err != nil || r.OK {
			t.Fatalf("got %+v, %v; want not OK (exact match only)", r, err)
		}
	})
	t.Run("nothing there", func(t *testing.T) {
		r, err := c.CheckDNSTXT(ctx, "nothing.example.test", rv)
		if err != nil || r.OK || len(r.Found) != 0 || !strings.Contains(r.Detail, "No TXT records") {
			t.Fatalf("got %+v, %v", r, err)
		}
	})
	t.Run("SERVFAIL is an error", func(t *testing.T) {
		z.ServFail("_dnsauth.broken.example.test")
		z.Add(t, `broken.example.test. 60 IN TXT "x"`)
		r, err := c.CheckDNSTXT(ctx, "broken.example.test", rv)
		var de *DNSError
		if !errors.As(err, &de) || r.OK || !strings.Contains(r.Detail, "SERVFAIL") {
			t.Fatalf("got %+v, %v; want DNSError", r, err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		if _, err := c.CheckDNSTXT(ctx, "not a domain", rv); err == nil {
			t.Fatal("invalid domain accepted")
		}
		if r, err := c.CheckDNSTXT(ctx, "apex.example.test", ""); err == nil || r.OK {
			t.Fatal("empty value accepted")
		}
	})
}

func TestCheckDNSCNAME(t *testing.T) {
	z := startDNS(t,
		`_cd-abc123.good.example.test. 60 IN CNAME abc123.dcv.certdesk.invalid.`,
		`_cd-abc123.upper.example.test. 60 IN CNAME ABC123.DCV.Certdesk.Invalid.`,
		`_cd-abc123.bad.example.test. 60 IN CNAME abc123.dcv.other-ca.test.`,
		`_cd-def.dflt.example.test. 60 IN CNAME dcv.certdesk.invalid.`,
		`_cd-abc123.txt.example.test. 60 IN TXT "abc123.dcv.certdesk.invalid"`,
	)
	c := newTestChecker(t, z, nil)
	ctx := context.Background()
	target := "abc123.dcv.certdesk.invalid"

	r, err := c.CheckDNSCNAME(ctx, "good.example.test", "_cd-abc123", target)
	if err != nil || !r.OK || r.Found[0] != "_cd-abc123.good.example.test CNAME "+target {
		t.Fatalf("right target: %+v, %v", r, err)
	}
	r, err = c.CheckDNSCNAME(ctx, "upper.example.test", "_CD-abc123", target)
	if err != nil || !r.OK {
		t.Fatalf("names compare case-insensitively: %+v, %v", r, err)
	}
	r, err = c.CheckDNSCNAME(ctx, "bad.example.test", "_cd-abc123", target)
	if err != nil || r.OK || !slices.Equal(r.Found, []string{"_cd-abc123.bad.example.test CNAME abc123.dcv.other-ca.test"}) ||
		!strings.Contains(r.Detail, "not to "+target) {
		t.Fatalf("wrong target: %+v, %v", r, err)
	}
	r, err = c.CheckDNSCNAME(ctx, "dflt.example.test", "_cd-def", "")
	if err != nil || !r.OK || r.Expected != "_cd-def.dflt.example.test CNAME "+DefaultCNAMETarget {
		t.Fatalf("empty target uses Config.CNAMETarget: %+v, %v", r, err)
	}
	r, err = c.CheckDNSCNAME(ctx, "txt.example.test", "_cd-abc123", target)
	if err != nil || r.OK || len(r.Found) != 0 {
		t.Fatalf("a TXT record is not a CNAME: %+v, %v", r, err)
	}
	if _, err := c.CheckDNSCNAME(ctx, "good.example.test", "a.b", target); err == nil {
		t.Fatal("a label with a dot must be refused")
	}
}

func TestConstructedEmails(t *testing.T) {
	got := ConstructedEmails("Example.COM.")
	want := []string{"admin@example.com", "administrator@example.com", "webmaster@example.com", "hostmaster@example.com", "postmaster@example.com"}
	if !slices.Equal(got, want) {
		t.Fatalf("ConstructedEmails = %q; want %q", got, want)
	}
	if ConstructedEmails("bad domain") != nil {
		t.Fatal("invalid domain must give nil")
	}
}
