package validation

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestCheckCAAIssueMail(t *testing.T) {
	z := startDNS(t,
		`other.example.test. 60 IN CAA 0 issuemail "otherca.example"`,
		`ours.example.test. 60 IN CAA 0 issuemail "otherca.example"`,
		`ours.example.test. 60 IN CAA 0 issuemail "CertDesk.Example; account=12345"`,
		`issueonly.example.test. 60 IN CAA 0 issue "letsencrypt.org"`,
		`issueonly.example.test. 60 IN CAA 0 iodef "mailto:sec@example.test"`,
		`parent.example.test. 60 IN CAA 0 issuemail "otherca.example"`,
		`mail.parent.example.test. 60 IN MX 10 mx.parent.example.test.`,
		`forbid.example.test. 60 IN CAA 0 issuemail ";"`,
		`critical.example.test. 60 IN CAA 128 tbs "unknown"`,
		`critical.example.test. 60 IN CAA 0 issuemail "certdesk.example"`,
		`noncrit.example.test. 60 IN CAA 0 tbs "unknown"`,
		`noncrit.example.test. 60 IN CAA 0 issuemail "certdesk.example"`,
		`critknown.example.test. 60 IN CAA 128 issuemail "certdesk.example"`,
		`malformed.example.test. 60 IN CAA 0 issuemail "certdesk.example. bad"`,
		`alias.example.test. 60 IN CNAME target.elsewhere.test.`,
		`target.elsewhere.test. 60 IN CAA 0 issuemail "otherca.example"`,
		`sub.aliasp.example.test. 60 IN CNAME nocaa.elsewhere.test.`,
		`nocaa.elsewhere.test. 60 IN A 192.0.2.1`,
		`elsewhere.test. 60 IN CAA 0 issuemail "otherca.example"`,
		`aliasp.example.test. 60 IN CAA 0 issuemail "certdesk.example"`,
	)
	z.ServFail("servfail.example.test")
	z.Drop("timeout.example.test")
	c := newTestChecker(t, z, nil)
	ctx := context.Background()

	cases := []struct {
		name, domain string
		allowed      bool
		reasonHas    []string
	}{
		{"issuemail naming another CA blocks", "other.example.test", false, []string{"other.example.test", `issuemail "otherca.example"`, "certdesk.example"}},
		{"issuemail naming us allows (parameters ignored, case-insensitive)", "ours.example.test", true, []string{"authorize this CA"}},
		{"absent everywhere allows", "none.example.test", true, []string{"No CAA records"}},
		{"issue without issuemail allows", "issueonly.example.test", true, []string{"no issuemail"}},
		{"parent record found by climbing", "sub.mail.parent.example.test", false, []string{"at parent.example.test", "otherca.example"}},
		{"email address accepted as input", "someone@mail.parent.example.test", false, []string{"at parent.example.test"}},
		{"semicolon forbids all", "forbid.example.test", false, []string{"forbid all"}},
		{"critical unknown tag blocks", "critical.example.test", false, []string{"critical", "tbs"}},
		{"non-critical unknown tag is ignored", "noncrit.example.test", true, nil},
		{"critical known tag is processed", "critknown.example.test", true, nil},
		{"malformed value authorizes nobody", "malformed.example.test", false, []string{"do not authorize"}},
		{"CNAME target's records are the relevant set", "alias.example.test", false, []string{"otherca.example"}},
		// RFC 8659 section 3: climb from the queried name's parent, not the alias target's.
		{"climb from the alias owner, not the target", "sub.aliasp.example.test", true, []string{"at aliasp.example.test"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason, err := c.CheckCAAIssueMail(ctx, tc.domain)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if ok != tc.allowed {
				t.Fatalf("allowed = %v (%s); want %v", ok, reason, tc.allowed)
			}
			for _, s := range tc.reasonHas {
				if !strings.Contains(reason, s) {
					t.Errorf("reason %q does not contain %q", reason, s)
				}
			}
		})
	}

	t.Run("SERVFAIL is an error", func(t *testing.T) {
		ok, _, err := c.CheckCAAIssueMail(ctx, "servfail.example.test")
		var de *DNSError
		if ok || !errors.As(err, &de) || de.Rcode != "SERVFAIL" {
			t.Fatalf("allowed=%v err=%v; want refused with a SERVFAIL DNSError", ok, err)
		}
	})
	t.Run("SERVFAIL on a parent while climbing is an error", func(t *testing.T) {
		ok, _, err := c.CheckCAAIssueMail(ctx, "child.servfail.example.test")
		if ok || err == nil {
			t.Fatalf("allowed=%v err=%v; want an error", ok, err)
		}
	})
	t.Run("timeout is an error", func(t *testing.T) {
		ok, _, err := c.CheckCAAIssueMail(ctx, "timeout.example.test")
		if ok || err == nil {
			t.Fatalf("allowed=%v err=%v; want an error", ok, err)
		}
	})
	t.Run("no identities configured: any issuemail blocks", func(t *testing.T) {
		c2 := newTestChecker(t, z, func(cfg *Config) { cfg.CAAIdentities = nil })
		ok, reason, err := c2.CheckCAAIssueMail(ctx, "ours.example.test")
		if ok || err != nil || !strings.Contains(reason, "none configured") {
			t.Fatalf("allowed=%v reason=%q err=%v", ok, reason, err)
		}
	})
}

func TestParseIssuerDomainName(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"ca.example", "ca.example", true},
		{"  CA.Example  ; a=b; c=d", "ca.example", true},
		{";", "", true},
		{"", "", true},
		{" ; policy=ev", "", true},
		{"ca..example", "", false},
		{"-ca.example", "", false},
		{"ca.example. x", "", false},
		{"ca_example.com", "", false},
	}
	for _, tc := range cases {
		got, ok := parseIssuerDomainName(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseIssuerDomainName(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
