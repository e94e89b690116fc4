package validation

import (
	"context"
	"fmt"
	"strings"

	"certdesk/internal/portal"
)

// knownCAATags are the property tags this CA understands (RFC 8659 4.2-4.4,
// RFC 9495 issuemail, TLS BR 3.2.2.4.13/17 contactemail/contactphone).
// A critical property with any other tag forbids issuance (RFC 8659 4.5).
var knownCAATags = map[string]bool{
	"issue": true, "issuewild": true, "iodef": true, "issuemail": true,
	"contactemail": true, "contactphone": true,
}

// RelevantCAASet returns the relevant CAA RRset for domain (RFC 8659
// section 3): the CAA records of the domain, or else of its closest
// ancestor that has any, climbing label by label up to (and including) the
// top-level domain. Aliases are followed at each name; the climb continues
// from the parent of the queried name, not of an alias target. It also
// returns the name where the RRset was found ("" when none was).
// A lookup failure is an error: the caller must not issue.
func (c *Checker) RelevantCAASet(ctx context.Context, domain string) ([]CAARecord, string, error) {
	d := normName(domain)
	if !portal.ValidDomainName(d) {
		return nil, "", portal.FieldError("domain", "", "Enter a valid domain name.")
	}
	for name := d; name != ""; name = parentName(name) {
		rrs, err := c.res.LookupCAA(ctx, name)
		if err != nil {
			return nil, "", err
		}
		if len(rrs) > 0 {
			return rrs, name, nil
		}
	}
	return nil, "", nil
}

// parentName drops the first label; "" after the top-level domain.
func parentName(name string) string {
	i := strings.IndexByte(name, '.')
	if i < 0 {
		return ""
	}
	return name[i+1:]
}

// CheckCAAIssueMail decides whether this CA may issue a certificate with
// a mailbox address at emailDomain (SBR 4.2.2.1, RFC 9495 section 4):
//   - no relevant CAA RRset, or one without issuemail properties (even if
//     issue/issuewild are present): allowed;
//   - a critical property with an unknown tag: refused (RFC 8659 4.5);
//   - issuemail properties present: allowed only when one names an issuer
//     domain name in Config.CAAIdentities (parameters after ';' are
//     ignored); issuemail ";" names nobody and so forbids all; a malformed
//     value authorizes nobody.
//
// A DNS failure (SERVFAIL, timeout, ...) returns a non-nil error with
// allowed false: the caller must not issue. reason is a sentence naming the
// records found, for logs and for the page (SBR 4.2.2.1 requires logging
// and documenting prevented issuance).
func (c *Checker) CheckCAAIssueMail(ctx context.Context, emailDomain string) (allowed bool, reason string, err error) {
	d := normName(emailDomain)
	if i := strings.LastIndexByte(d, '@'); i >= 0 {
		d = d[i+1:]
	}
	rrs, at, err := c.RelevantCAASet(ctx, d)
	if err != nil {
		return false, fmt.Sprintf("CAA lookup for %s failed; issuance is not allowed until it succeeds.", d), err
	}
	if len(rrs) == 0 {
		return true, fmt.Sprintf("No CAA records for %s or its parent domains.", d), nil
	}
	var issuemail []string
	for _, rr := range rrs {
		tag := strings.ToLower(rr.Tag)
		if rr.Critical() && !knownCAATags[tag] {
			return false, fmt.Sprintf("The CAA records at %s contain a critical property %q that this CA does not understand (RFC 8659 section 4.5), so it may not issue.", at, rr.Tag), nil
		}
		if tag == "issuemail" {
			issuemail = append(issuemail, rr.Value)
		}
	}
	if len(issuemail) == 0 {
		return true, fmt.Sprintf("The CAA records at %s have no issuemail property; they do not restrict S/MIME certificates.", at), nil
	}
	quoted := make([]string, len(issuemail))
	for i, v := range issuemail {
		quoted[i] = fmt.Sprintf("issuemail %q", v)
		if name, ok := parseIssuerDomainName(v); ok && name != "" {
			for _, id := range c.cfg.CAAIdentities {
				if name == id {
					return true, fmt.Sprintf("The CAA records at %s authorize this CA (%s).", at, quoted[i]), nil
				}
			}
		}
	}
	ours := "none configured"
	if len(c.cfg.CAAIdentities) > 0 {
		ours = strings.Join(c.cfg.CAAIdentities, ", ")
	}
	allEmpty := true
	for _, v := range issuemail {
		if name, ok := parseIssuerDomainName(v); !ok || name != "" {
			allEmpty = false
		}
	}
	if allEmpty {
		return false, fmt.Sprintf("The CAA records at %s forbid all S/MIME issuance (%s).", at, strings.Join(quoted, ", ")), nil
	}
	return false, fmt.Sprintf("The CAA records at %s do not authorize this CA (%s) to issue S/MIME certificates; found: %s.", at, ours, strings.Join(quoted, ", ")), nil
}

// parseIssuerDomainName parses an issue/issuemail value (RFC 8659 4.2,
// RFC 9495 section 3):
//
//	issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]
//
// It returns the issuer domain name in lower case ("" when absent, as in
// ";") and ok false when the part before ';' is malformed. Parameters are
// not interpreted.
func parseIssuerDomainName(v string) (string, bool) {
	name := v
	if i := strings.IndexByte(v, ';'); i >= 0 {
		name = v[:i]
	}
	name = strings.Trim(name, " \t")
	if name == "" {
		return "", true
	}
	for _, label := range strings.Split(name, ".") {
		// label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT) )
		if label == "" || !isAlnum(label[0]) || !isAlnum(label[len(label)-1]) {
			return "", false
		}
		for i := 0; i < len(label); i++ {
			if !isAlnum(label[i]) && label[i] != '-' {
				return "", false
			}
		}
	}
	return strings.ToLower(name), true
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}
