package validation

import (
	"context"
	"fmt"
	"strings"

	"certdesk/internal/portal"
)

// DNSAuthLabel is the underscore label under which a TXT record may be
// placed instead of at the domain itself (TLS BR 3.2.2.4.7 item 2).
const DNSAuthLabel = "_dnsauth"

// CheckDNSTXT looks for value in a TXT record at domain or at
// _dnsauth.<domain> (TLS BR 3.2.2.4.7 DNS Change: "an Authorization Domain
// Name" or one "prefixed with a Domain Label that begins with an
// underscore"). A record matches when its text, with surrounding white
// space removed, equals value. CNAME aliases are followed.
// Found lists every TXT record seen as `name: "text"`.
func (c *Checker) CheckDNSTXT(ctx context.Context, domain, value string) (Result, error) {
	r := Result{Method: MethodDNSTXT}
	d, err := normDomain(domain)
	if err != nil {
		return fail(r, err)
	}
	if err := checkValue(value); err != nil {
		return fail(r, err)
	}
	names := []string{d, DNSAuthLabel + "." + d}
	r.Expected = fmt.Sprintf("a TXT record %q at %s or at %s", value, names[0], names[1])
	for _, name := range names {
		txts, err := c.res.LookupTXT(ctx, name)
		if err != nil {
			r.Detail = fmt.Sprintf("The DNS lookup failed: %v.", err)
			return fail(r, err)
		}
		for _, t := range txts {
			r.Found = append(r.Found, fmt.Sprintf("%s: %q", name, t))
			if !r.OK && strings.TrimSpace(t) == value {
				r.OK = true
				r.Detail = fmt.Sprintf("Found the value in a TXT record at %s.", name)
			}
		}
	}
	if !r.OK {
		if len(r.Found) == 0 {
			r.Detail = fmt.Sprintf("No TXT records found at %s or %s.", names[0], names[1])
		} else {
			r.Detail = fmt.Sprintf("Found %d TXT record(s), none with the expected value.", len(r.Found))
		}
	}
	return r, nil
}

// CheckDNSCNAME checks that <label>.<domain> is a CNAME whose target is
// target (TLS BR 3.2.2.4.7 DNS Change, CNAME record). An empty target means
// Config.CNAMETarget. The random value must be part of label or target (the
// caller builds them); BR 3.2.2.4.7 requires each Applicant to delegate to
// a unique FQDN when the CA runs the target zone. Only the CNAME record at
// the name itself counts, not a later alias in a chain.
func (c *Checker) CheckDNSCNAME(ctx context.Context, domain, label, target string) (Result, error) {
	r := Result{Method: MethodDNSCNAME}
	d, err := normDomain(domain)
	if err != nil {
		return fail(r, err)
	}
	label = strings.ToLower(strings.TrimSpace(label))
	if !validLabel(label) {
		return fail(r, portal.Errorf(portal.EInvalid, "The CNAME label is not a valid DNS label."))
	}
	if target == "" {
		target = c.cfg.CNAMETarget
	}
	target = normName(target)
	if err := checkValue(target); err != nil {
		return fail(r, err)
	}
	name := label + "." + d
	r.Expected = fmt.Sprintf("%s CNAME %s", name, target)
	got, err := c.res.LookupCNAME(ctx, name)
	if err != nil {
		r.Detail = fmt.Sprintf("The DNS lookup failed: %v.", err)
		return fail(r, err)
	}
	if got == "" {
		r.Detail = fmt.Sprintf("No CNAME record found at %s.", name)
		return r, nil
	}
	r.Found = []string{fmt.Sprintf("%s CNAME %s", name, got)}
	if got == target {
		r.OK = true
		r.Detail = fmt.Sprintf("%s is a CNAME to %s.", name, target)
	} else {
		r.Detail = fmt.Sprintf("%s is a CNAME to %s, not to %s.", name, got, target)
	}
	return r, nil
}

// validLabel accepts one DNS label of letters, digits, hyphens and
// underscores (underscore labels are allowed by TLS BR 3.2.2.4.7).
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, ch := range l {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// constructedLocalParts are the local parts TLS BR 3.2.2.4.4 allows.
var constructedLocalParts = []string{"admin", "administrator", "webmaster", "hostmaster", "postmaster"}

// ConstructedEmails returns the addresses of TLS BR 3.2.2.4.4 (Email to a
// Constructed Address) for domain: admin@, administrator@, webmaster@,
// hostmaster@ and postmaster@. It returns nil for an invalid domain.
// Note: TLS BR 3.2.2.4.4 says this method SHOULD NOT be used from
// 2026-03-15 and MUST NOT be relied on from 2028-03-15.
func ConstructedEmails(domain string) []string {
	d, ok := portal.NormalizeDomain(domain)
	if !ok {
		return nil
	}
	out := make([]string, len(constructedLocalParts))
	for i, lp := range constructedLocalParts {
		out[i] = lp + "@" + d
	}
	return out
}
