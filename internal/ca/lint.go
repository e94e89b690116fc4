package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	// The zlint package registers every lint in lint.GlobalRegistry when
	// it is imported; lintDER runs them without calling it.
	_ "github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

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

// lintPlan is lintRegistry's certificate lints and configuration, taken
// once. zlint.LintCertificateEx runs exactly these lints with exactly this
// Execute call, but per certificate it also sorts every lint name
// (registry.Names), rebuilds the lint list and fills a result map: about a
// quarter of its time on a subscriber certificate here. lintDER runs the
// same list itself (TestLintDERMatchesZlint proves the findings are the
// same).
type lintPlan struct {
	lints []*lint.CertificateLint
	cfg   lint.Configuration
}

var lintPlanOnce = sync.OnceValues(func() (*lintPlan, error) {
	reg, err := lintRegistry()
	if err != nil {
		return nil, err
	}
	plan := &lintPlan{lints: reg.CertificateLints().Lints(), cfg: reg.GetConfiguration()}
	// A registry without its lints would pass every certificate.
	n := map[lint.LintSource]int{}
	for _, l := range plan.lints {
		n[l.Source]++
	}
	if n[lint.CABFSMIMEBaselineRequirements] < minSMIMELints || n[lint.RFC5280] < minRFC5280Lints {
		return nil, fmt.Errorf("ca: zlint registry has %d S/MIME BR and %d RFC 5280 lints, want at least %d and %d",
			n[lint.CABFSMIMEBaselineRequirements], n[lint.RFC5280], minSMIMELints, minRFC5280Lints)
	}
	return plan, nil
})

// zlint v3.7.3 has 37 S/MIME BR lints (FACTS.md) and over 100 RFC 5280
// certificate lints.
const (
	minSMIMELints   = 37
	minRFC5280Lints = 100
)

// errTBSCaptured stops x509.CreateCertificate once it has the
// tbsCertificate: tbsCapture never signs.
var errTBSCaptured = errors.New("ca: tbsCertificate captured (not an error)")

// tbsCapture is the "signer" handed to x509.CreateCertificate to get the
// exact to-be-signed bytes without signing anything (SBR 4.3.1.2).
//
// Why this is the to-be-signed content of the real certificate:
// CreateCertificate derives every TBS byte from the template, the parent
// certificate (issuer name, authorityKeyIdentifier from its SKI), the
// subject public key and the signature algorithm, which it checks against
// the signer's Public(). tbsCapture presents the issuing CA's own public
// key and is used with the real issuing CA certificate, so the algorithm
// and every other field are exactly what the CA key would sign. Go 1.25+
// passes the unhashed TBS to crypto.MessageSigner.SignMessage; tbsCapture
// keeps it and aborts. Those bytes are linted, and those same bytes (not
// a rebuild) are then signed by the CA key in signTBS. The lint
// certificate carries a static signature value: SBR 4.3.1.2 method 2 ("a
// static value for the signature field"); no lint in our sources reads
// the signature value (zlint checks no signature at all), and the outer
// signatureAlgorithm is the TBS's own.
type tbsCapture struct {
	pub crypto.PublicKey
	tbs []byte
}

func (c *tbsCapture) Public() crypto.PublicKey { return c.pub }

func (c *tbsCapture) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("ca: tbsCapture cannot sign a digest") // CreateCertificate uses SignMessage
}

func (c *tbsCapture) SignMessage(_ io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	c.tbs = bytes.Clone(msg)
	return nil, errTBSCaptured
}

var _ crypto.MessageSigner = (*tbsCapture)(nil)

// tbsFor returns the DER tbsCertificate the issuing CA would sign for t.
func (a *Authority) tbsFor(t *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	c := &tbsCapture{pub: a.issuer.PublicKey}
	_, err := x509.CreateCertificate(rand.Reader, t, a.issuer, pub, c)
	if !errors.Is(err, errTBSCaptured) {
		if err == nil {
			err = errors.New("x509.CreateCertificate signed without the capturing signer")
		}
		return nil, fmt.Errorf("ca: building the tbsCertificate: %w", err)
	}
	if len(c.tbs) == 0 {
		return nil, errors.New("ca: building the tbsCertificate: nothing captured")
	}
	return c.tbs, nil
}

// tbsSignatureAlgorithm returns the DER AlgorithmIdentifier inside a
// tbsCertificate (its "signature" field); the certificate's outer
// signatureAlgorithm must be the same (RFC 5280 4.1.1.2).
func tbsSignatureAlgorithm(tbs []byte) ([]byte, error) {
	s := cryptobyte.String(tbs)
	var in, alg cryptobyte.String
	if !s.ReadASN1(&in, casn1.SEQUENCE) || !s.Empty() ||
		!in.SkipOptionalASN1(casn1.Tag(0).Constructed().ContextSpecific()) ||
		!in.SkipASN1(casn1.INTEGER) ||
		!in.ReadASN1Element(&alg, casn1.SEQUENCE) {
		return nil, errors.New("ca: malformed tbsCertificate")
	}
	return alg, nil
}

// assembleCertificate is Certificate ::= SEQUENCE { tbsCertificate,
// signatureAlgorithm, signatureValue BIT STRING } (RFC 5280 4.1).
func assembleCertificate(tbs, sig []byte) ([]byte, error) {
	alg, err := tbsSignatureAlgorithm(tbs)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddBytes(alg)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
}

// staticSignature is the placeholder signature value of a lint
// certificate, shaped like the issuer's (SBR 4.3.1.2 method 2).
func staticSignature(issuer crypto.PublicKey) []byte {
	switch k := issuer.(type) {
	case *rsa.PublicKey:
		return make([]byte, k.Size())
	case *ecdsa.PublicKey:
		return []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01} // ECDSA-Sig-Value {r 1, s 1}
	}
	return []byte{0}
}

// lintTBS lints the to-be-signed bytes: zlint and certdesk's own checks on
// a certificate made of tbs and a static signature. It returns nil when
// clean, otherwise *LintError.
func (a *Authority) lintTBS(tbs []byte) error {
	der, err := assembleCertificate(tbs, staticSignature(a.issuer.PublicKey))
	if err != nil {
		return err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("ca: parsing the lint certificate: %w", err)
	}
	all, err := lintDER(der)
	if err != nil {
		return err
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
		return &LintError{Findings: findings}
	}
	return nil
}

// lintedTBS builds t's tbsCertificate and lints it (SBR 4.3.1.2); the
// returned bytes are what the CA key may sign.
func (a *Authority) lintedTBS(t *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	tbs, err := a.tbsFor(t, pub)
	if err != nil {
		return nil, err
	}
	if err := a.lintTBS(tbs); err != nil {
		return nil, err
	}
	return tbs, nil
}

// lintDER runs the selected zlint lints on a DER certificate and returns
// every error, warning or fatal finding.
func lintDER(der []byte) ([]LintFinding, error) {
	plan, err := lintPlanOnce()
	if err != nil {
		return nil, err
	}
	zc, err := zx509.ParseCertificate(der)
	if err != nil {
		return []LintFinding{{Name: "e_certdesk_zcrypto_parse", Status: "fatal", Details: err.Error()}}, nil
	}
	var out []LintFinding
	for _, l := range plan.lints {
		r := l.Execute(zc, plan.cfg) // as zlint's ResultSet.executeCertificate
		if r == nil {
			continue
		}
		switch r.Status {
		case lint.Error, lint.Warn, lint.Fatal:
			out = append(out, LintFinding{Name: l.Name, Status: r.Status.String(), Details: r.Details})
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
// sample subscriber certificate, so a profile that zlint refuses stops the
// CA at start.
func (a *Authority) selfCheck() error {
	if f, err := lintDER(a.issuer.Raw); err != nil {
		return err
	} else if len(f) > 0 {
		return fmt.Errorf("ca: the issuing CA certificate fails lint: %w", &LintError{Findings: f})
	}
	ec, err := sampleKey()
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
		if _, err := a.lintedTBS(t, req.PublicKey); err != nil {
			return fmt.Errorf("ca: self-check of %s: %w", p.ID, err)
		}
	}
	return nil
}

// sampleKey is the subscriber key of the self-check certificates (never
// certified).
var sampleKey = sync.OnceValues(func() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
})
