package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"certdesk/internal/portal"
)

// LintFinding is one problem found before signing.
type LintFinding struct {
	Name    string // zlint lint name, or e_certdesk_* for certdesk's own checks
	Status  string // "error", "warn" or "fatal"
	Details string
}

// LintError refuses a certificate that failed pre-issuance linting
// (SBR 4.3.1.2). Nothing was signed with the CA key. It is an internal
// error for the user (portal.ErrorCode gives EInternal): the profile or the
// data is wrong, not the user's input.
type LintError struct {
	Findings []LintFinding
}

func (e *LintError) Error() string {
	names := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		names[i] = f.Name
	}
	return "ca: certificate refused by pre-issuance lint: " + strings.Join(names, ", ")
}

// Names lists the names of the failed lints.
func (e *LintError) Names() []string {
	out := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		out[i] = f.Name
	}
	return out
}

// Has reports whether a lint of that name failed.
func (e *LintError) Has(name string) bool {
	for _, f := range e.Findings {
		if f.Name == name {
			return true
		}
	}
	return false
}

// lintRegistry: zlint's S/MIME BR and RFC 5280 lints, selected by source
// (their names share no prefix). CABF_EV and ETSI_ESI are excluded anyway
// by the include list, and the TLS CT notice is excluded by name.
var lintRegistry = sync.OnceValues(func() (lint.Registry, error) {
	return lint.GlobalRegistry().Filter(lint.FilterOptions{
		IncludeSources: lint.SourceList{lint.CABFSMIMEBaselineRequirements, lint.RFC5280},
		ExcludeSources: lint.SourceList{lint.CABFEVGuidelines, lint.EtsiEsi},
		ExcludeNames:   []string{"n_ct_sct_policy_count_unsatisfied"},
	})
})

// Throwaway lint keys, one per issuer key kind for the life of the process
// (Boulder's linter does the same). They sign only lint certificates that
// are never published.
var (
	lintKeysMu sync.Mutex
	lintKeys   = map[string]crypto.Signer{}
)

func lintKeyFor(pub crypto.PublicKey) (crypto.Signer, error) {
	var kind string
	switch k := pub.(type) {
	case *rsa.PublicKey:
		kind = "rsa2048" // the signature algorithm, not the modulus size, shapes the TBS
	case *ecdsa.PublicKey:
		kind = k.Curve.Params().Name
	default:
		return nil, fmt.Errorf("ca: no lint key for %T", pub)
	}
	lintKeysMu.Lock()
	defer lintKeysMu.Unlock()
	if k, ok := lintKeys[kind]; ok {
		return k, nil
	}
	var k crypto.Signer
	var err error
	switch kind {
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "P-256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "P-384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		err = fmt.Errorf("ca: no lint key for curve %s", kind)
	}
	if err != nil {
		return nil, err
	}
	lintKeys[kind] = k
	return k, nil
}

// lintTemplate signs t with a throwaway key under a copy of the issuer (same
// name, same key identifier, other key), runs zlint and certdesk's own
// checks, and returns the lint certificate when clean.
func (a *Authority) lintTemplate(t *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	key, err := lintKeyFor(a.issuer.PublicKey)
	if err != nil {
		return nil, err
	}
	fake := *a.issuer
	fake.PublicKey = key.Public()
	der, err := x509.CreateCertificate(rand.Reader, t, &fake, pub, key)
	if err != nil {
		return nil, fmt.Errorf("ca: building the lint certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing the lint certificate: %w", err)
	}
	all, err := lintDER(der)
	if err != nil {
		return nil, err
	}
	var findings []LintFinding
	for _, f := range all {
		if a.cfg.AllowInternalNames && f.Name == "w_smime_aia_contains_internal_names" {
			continue
		}
		findings = append(findings, f)
	}
	findings = append(findings, ownChecks(c)...)
	if len(findings) > 0 {
		return nil, &LintError{Findings: findings}
	}
	return c, nil
}

// lintDER runs the selected zlint lints on a DER certificate and returns
// every error, warning or fatal finding.
func lintDER(der []byte) ([]LintFinding, error) {
	reg, err := lintRegistry()
	if err != nil {
		return nil, err
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return []LintFinding{{Name: "e_certdesk_zcrypto_parse", Status: "fatal", Details: err.Error()}}, nil
	}
	rs := zlint.LintCertificateEx(zc, reg)
	var out []LintFinding
	for name, r := range rs.Results {
		if r == nil {
			continue
		}
		switch r.Status {
		case lint.Error, lint.Warn, lint.Fatal:
			out = append(out, LintFinding{Name: name, Status: r.Status.String(), Details: r.Details})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ownChecks are the rules zlint does not cover (see FACTS.md).
func ownChecks(c *x509.Certificate) []LintFinding {
	var out []LintFinding
	add := func(name, details string) {
		out = append(out, LintFinding{Name: name, Status: "error", Details: details})
	}
	// SBR 6.3.2: validity at most 825 days, counted inclusively.
	if c.NotAfter.Sub(c.NotBefore)+1e9 > portal.MaxCertValidity {
		add("e_certdesk_validity_over_825_days", "SBR 6.3.2: subscriber certificates are valid at most 825 days")
	}
	// SBR 7.1: serial positive, < 2^159, at least 64 CSPRNG bits (we make
	// 128); a serial shorter than 64 bits cannot hold them.
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 64 || c.SerialNumber.BitLen() >= 160 {
		add("e_certdesk_serial_entropy", "SBR 7.1: serial must be positive with at least 64 random bits")
	}
	// SBR 7.1.2.3 (c): AIA with OCSP and caIssuers over HTTP (we always
	// provide both).
	if len(c.OCSPServer) == 0 || len(c.IssuingCertificateURL) == 0 {
		add("e_certdesk_aia_missing", "SBR 7.1.2.3 (c): authorityInformationAccess with OCSP and caIssuers is required")
	}
	// SBR 7.1.4.2.1: each address once.
	seen := map[string]bool{}
	for _, e := range c.EmailAddresses {
		k := strings.ToLower(e)
		if seen[k] {
			add("e_certdesk_duplicate_email", "an email address appears twice in subjectAltName")
			break
		}
		seen[k] = true
	}
	// SBR 7.1.2.3 (n), certdesk policy: leaves carry a subjectKeyIdentifier.
	if len(c.SubjectKeyId) == 0 {
		add("e_certdesk_ski_missing", "SBR 7.1.2.3 (n): subjectKeyIdentifier SHOULD be present")
	}
	// SBR 7.1.2.3 (a): exactly one reserved policy identifier.
	n := 0
	for _, p := range c.Policies {
		if strings.HasPrefix(p.String(), "2.23.140.1.5.") {
			n++
		}
	}
	if n != 1 {
		add("e_certdesk_smime_policy_count", "SBR 7.1.2.3 (a): exactly one reserved S/MIME policy identifier")
	}
	return out
}

// selfCheck lints the issuing CA certificate and, for every product, a
// sample subscriber certificate made from the lint key, so a profile that
// zlint refuses stops the CA at start.
func (a *Authority) selfCheck() error {
	if f, err := lintDER(a.issuer.Raw); err != nil {
		return err
	} else if len(f) > 0 {
		return fmt.Errorf("ca: the issuing CA certificate fails lint: %w", &LintError{Findings: f})
	}
	ec, err := lintKeyFor(&ecdsa.PublicKey{Curve: elliptic.P256()})
	if err != nil {
		return err
	}
	for _, p := range portal.Products {
		req := IssueRequest{
			Product: p, Emails: []string{"selfcheck@example.com"},
			CommonName: "Self Check", CommonNameFromName: p.PersonalName,
			PublicKey: ec.Public(),
		}
		if p.OrgInSubject {
			req.OrgName, req.OrgIdentifier, req.OrgCountry = "Example B.V.", "NTRNL-12345678", "NL"
		}
		t, err := a.buildTemplate(req)
		if err != nil {
			return fmt.Errorf("ca: self-check of %s: %w", p.ID, err)
		}
		if _, err := a.lintTemplate(t, req.PublicKey); err != nil {
			return fmt.Errorf("ca: self-check of %s: %w", p.ID, err)
		}
	}
	return nil
}
