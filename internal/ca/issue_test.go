package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"certdesk/internal/portal"
)

var wantSigAlg = map[string]map[portal.SignatureHash]x509.SignatureAlgorithm{
	KeyRSA2048: {portal.SHA256: x509.SHA256WithRSA, portal.SHA384: x509.SHA384WithRSA, portal.SHA512: x509.SHA512WithRSA},
	KeyP256:    {portal.SHA256: x509.ECDSAWithSHA256},
	KeyP384:    {portal.SHA384: x509.ECDSAWithSHA384},
}

// caFiles writes a CA's root and issuing certificates once per CA for
// openssl.
var (
	caFilesMu sync.Mutex
	caFilesM  = map[*Authority][2]string{}
)

func caFiles(t *testing.T, a *Authority) (root, issuing string) {
	caFilesMu.Lock()
	defer caFilesMu.Unlock()
	if f, ok := caFilesM[a]; ok {
		return f[0], f[1]
	}
	dir, err := os.MkdirTemp(testCAsDir, "pem")
	if err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(dir, "root.pem")
	issuing = filepath.Join(dir, "issuing.pem")
	os.WriteFile(root, a.RootPEM(), 0o600)
	os.WriteFile(issuing, a.IssuingPEM(), 0o600)
	caFilesM[a] = [2]string{root, issuing}
	return root, issuing
}

type leafCase struct {
	name    string
	keyName string
	is      *Issued
	key     crypto.Signer
}

// TestIssueMatrix issues every product with every subscriber key under
// every issuer key and allowed hash, and checks each certificate: profile
// content, zero zlint findings on the final certificate, Go chain
// verification, then openssl: verify -x509_strict with -purpose smimesign
// (all) and smimeencrypt (where the key usage allows it; refused for RSA
// signing-only), a CMS signature made with every leaf's key and verified
// against the root, and a CMS encryption to the dual-use leaves decrypted
// with each subscriber key. openssl runs batched (one process for many
// certificates): starting a process costs about 50 ms here.
func TestIssueMatrix(t *testing.T) {
	t.Parallel()
	keys := subscriberKeys()
	for _, issuerKind := range []string{KeyRSA2048, KeyP256, KeyP384} {
		a := testCA(t, issuerKind)
		t.Run(issuerKind+"-issuer", func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var leaves []leafCase
			t.Run("issue", func(t *testing.T) {
				for _, h := range a.AllowedHashes() {
					for _, p := range portal.Products {
						for _, kn := range subscriberKeyNames {
							name := fmt.Sprintf("%s/%s/%s", h, p.ID, kn)
							t.Run(name, func(t *testing.T) {
								t.Parallel()
								req := requestFor(p, keys[kn].Public())
								req.SignatureHash = h
								is, err := a.Issue(req)
								if err != nil {
									t.Fatalf("Issue: %v", err)
								}
								checkLeaf(t, a, is, req, wantSigAlg[issuerKind][h])
								mu.Lock()
								leaves = append(leaves, leafCase{name: name, keyName: kn, is: is, key: keys[kn]})
								mu.Unlock()
							})
						}
					}
				}
			})
			if t.Failed() {
				return
			}
			if _, err := os.Stat("/usr/bin/openssl"); err != nil {
				t.Skip("openssl not installed at /usr/bin/openssl")
			}
			checkOpenSSL(t, a, leaves)
		})
	}
}

func checkLeaf(t *testing.T, a *Authority, is *Issued, req IssueRequest, alg x509.SignatureAlgorithm) {
	t.Helper()
	c := is.Certificate
	prof, _ := ProfileFor(req.Product)
	if c.SignatureAlgorithm != alg {
		t.Errorf("signature algorithm %v, want %v", c.SignatureAlgorithm, alg)
	}
	if len(c.Policies) != 1 || !c.Policies[0].Equal(prof.Policy) {
		t.Errorf("policies %v, want exactly %v", c.Policies, prof.Policy)
	}
	if !slices.Equal(c.ExtKeyUsage, prof.ExtKeyUsage) || len(c.UnknownExtKeyUsage) != 0 {
		t.Errorf("EKU %v, want %v", c.ExtKeyUsage, prof.ExtKeyUsage)
	}
	if req.Product.Generation == portal.Strict && !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}) {
		t.Errorf("strict EKU %v", c.ExtKeyUsage)
	}
	if c.KeyUsage != prof.KeyUsage(req.PublicKey) {
		t.Errorf("key usage %b", c.KeyUsage)
	}
	if !slices.Equal(c.EmailAddresses, req.Emails) || len(c.DNSNames) != 0 {
		t.Errorf("SAN %v", c.EmailAddresses)
	}
	if !bytes.Equal(c.AuthorityKeyId, a.IssuingCert().SubjectKeyId) || len(c.SubjectKeyId) == 0 {
		t.Error("AKI/SKI wrong")
	}
	if !slices.Equal(c.CRLDistributionPoints, []string{testBase + "/crl/" + a.IssuerID() + ".crl"}) ||
		!slices.Equal(c.OCSPServer, []string{testBase + "/ocsp"}) ||
		!slices.Equal(c.IssuingCertificateURL, []string{testBase + "/ca/issuing.crt"}) {
		t.Errorf("CRL/AIA %v %v %v", c.CRLDistributionPoints, c.OCSPServer, c.IssuingCertificateURL)
	}
	if c.IsCA || !c.BasicConstraintsValid {
		t.Error("basicConstraints")
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() < 100 {
		t.Errorf("serial %x", c.SerialNumber)
	}
	checkSubject(t, c, req)
	// The final certificate, not only the lint copy, has no finding.
	if f, err := lintDER(is.DER); err != nil || len(f) != 0 {
		t.Errorf("final certificate lint: %v %+v", err, f)
	}
	roots := x509.NewCertPool()
	roots.AddCert(a.RootCert())
	inter := x509.NewCertPool()
	inter.AddCert(a.IssuingCert())
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: testNow.Add(time.Hour),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
		t.Errorf("Go verify: %v", err)
	}
}

// subjectAttrs lists the subject's attribute OIDs and values in order.
func subjectAttrs(t *testing.T, c *x509.Certificate) map[string]string {
	m := map[string]string{}
	for _, atv := range c.Subject.Names {
		m[atv.Type.String()] = fmt.Sprint(atv.Value)
	}
	return m
}

func checkSubject(t *testing.T, c *x509.Certificate, req IssueRequest) {
	t.Helper()
	got := subjectAttrs(t, c)
	want := map[string]string{}
	switch req.Product.Type {
	case portal.MailboxValidated:
		want["2.5.4.3"] = req.Emails[0]
	case portal.OrganizationValidated:
		want["2.5.4.3"] = req.Emails[0]
		want["2.5.4.10"], want["2.5.4.97"], want["2.5.4.6"] = req.OrgName, req.OrgIdentifier, req.OrgCountry
	case portal.SponsorValidated:
		want["2.5.4.3"] = req.CommonName
		want["2.5.4.10"], want["2.5.4.97"], want["2.5.4.6"] = req.OrgName, req.OrgIdentifier, req.OrgCountry
		want["2.5.4.42"], want["2.5.4.4"] = "Jan de", "Vries"
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("subject %v, want %v", got, want)
	}
}

func checkOpenSSL(t *testing.T, a *Authority, leaves []leafCase) {
	root, issuing := caFiles(t, a)
	dir := t.TempDir()
	at := strconv.FormatInt(testNow.Add(time.Hour).Unix(), 10)
	const message = "Hello from certdesk.\r\n"
	msg := writeTemp(t, dir, "msg.txt", []byte(message))
	files := map[string]string{} // leaf name -> file
	keyFiles := map[string]string{}
	var all, encrypt, signOnlyRSA []string
	for i, l := range leaves {
		f := writeTemp(t, dir, fmt.Sprintf("leaf%03d.pem", i), l.is.PEM())
		files[l.name] = f
		all = append(all, f)
		if _, ok := keyFiles[l.keyName]; !ok {
			der, _ := x509.MarshalPKCS8PrivateKey(l.key)
			keyFiles[l.keyName] = writeTemp(t, dir, l.keyName+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		}
		ku := l.is.Certificate.KeyUsage
		switch {
		case ku&x509.KeyUsageKeyEncipherment != 0:
			encrypt = append(encrypt, f)
		case ku&x509.KeyUsageKeyAgreement == 0 && strings.HasPrefix(l.keyName, "rsa"):
			signOnlyRSA = append(signOnlyRSA, f)
		}
	}
	verify := func(purpose string, fs []string, wantOK bool) {
		args := append([]string{"verify", "-x509_strict", "-attime", at, "-purpose", purpose,
			"-CAfile", root, "-untrusted", issuing}, fs...)
		out, _ := runOpenSSL(t, args...)
		for _, f := range fs {
			ok := strings.Contains(out, f+": OK")
			if ok != wantOK {
				t.Errorf("openssl verify -purpose %s %s: OK=%v, want %v\n%s", purpose, f, ok, wantOK, out)
				return
			}
		}
	}
	verify("smimesign", all, true)
	verify("smimeencrypt", encrypt, true)
	// Digital Signature Plus (RSA, signing only) is not for encryption.
	verify("smimeencrypt", signOnlyRSA, false)
	if len(encrypt) == 0 || len(signOnlyRSA) == 0 {
		t.Fatal("matrix lacks encryption or signing-only RSA leaves")
	}

	// One CMS SignedData signed by every leaf's key; cms -verify checks
	// every SignerInfo and each signer's chain for smimesign.
	sig := filepath.Join(dir, "msg.p7s")
	args := []string{"cms", "-sign", "-nodetach", "-binary", "-in", msg, "-certfile", issuing, "-outform", "DER", "-out", sig}
	for _, l := range leaves {
		args = append(args, "-signer", files[l.name], "-inkey", keyFiles[l.keyName])
	}
	if out, err := runOpenSSL(t, args...); err != nil {
		t.Fatalf("cms -sign: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "out.txt")
	if o, err := runOpenSSL(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-CAfile", root,
		"-attime", at, "-purpose", "smimesign", "-out", out); err != nil {
		t.Fatalf("cms -verify: %v\n%s", err, o)
	}
	if b, _ := os.ReadFile(out); string(b) != message {
		t.Fatalf("cms -verify content %q", b)
	}
	if o, _ := runOpenSSL(t, "cms", "-cmsout", "-print", "-inform", "DER", "-in", sig); strings.Count(o, "signatureAlgorithm:") != len(leaves) {
		t.Fatalf("SignedData has %d signers, want %d", strings.Count(o, "signatureAlgorithm:"), len(leaves))
	}

	// Encrypt to every dual-use leaf (RSA key transport, ECDH key
	// agreement), then decrypt as one leaf per subscriber key.
	var dual []leafCase
	for _, l := range leaves {
		if l.is.Certificate.KeyUsage&(x509.KeyUsageKeyEncipherment|x509.KeyUsageKeyAgreement) != 0 {
			dual = append(dual, l)
		}
	}
	enc := filepath.Join(dir, "msg.p7m")
	args = []string{"cms", "-encrypt", "-binary", "-aes256", "-in", msg, "-outform", "DER", "-out", enc}
	for _, l := range dual {
		args = append(args, files[l.name])
	}
	if o, err := runOpenSSL(t, args...); err != nil {
		t.Fatalf("cms -encrypt: %v\n%s", err, o)
	}
	done := map[string]bool{}
	for i, l := range dual {
		if done[l.keyName] {
			continue
		}
		done[l.keyName] = true
		dec := filepath.Join(dir, fmt.Sprintf("dec%d.txt", i))
		if o, err := runOpenSSL(t, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", enc,
			"-recip", files[l.name], "-inkey", keyFiles[l.keyName], "-out", dec); err != nil {
			t.Fatalf("cms -decrypt as %s: %v\n%s", l.name, err, o)
		}
		if b, _ := os.ReadFile(dec); string(b) != message {
			t.Fatalf("cms -decrypt as %s: %q", l.name, b)
		}
	}
	if len(done) != len(subscriberKeyNames) {
		t.Fatalf("decrypted with %d key types, want %d", len(done), len(subscriberKeyNames))
	}
}

// TestLintStopsMistakes injects each mistake into the template and proves
// the certificate is refused with the expected lint and that the issuing
// key signed nothing.
func TestLintStopsMistakes(t *testing.T) {
	t.Parallel()
	a := freshCA(t, KeyRSA2048, portal.NewFixedClock(testNow))
	rsaKey := subscriberKeys()["rsa2048"].Public()
	cases := []struct {
		name    string
		product portal.ProductID
		mutate  func(*x509.Certificate)
		want    string
	}{
		{"personal name in CN of mailbox-validated", portal.ProductIndividual,
			func(c *x509.Certificate) { c.Subject.CommonName = "Jan de Vries" }, "e_commonname_mailbox_validated"},
		{"O in mailbox-validated subject", portal.ProductIndividual,
			func(c *x509.Certificate) { c.Subject.Organization = []string{"Voorbeeld B.V."} }, "e_mailbox_validated_allowed_subjectdn_attributes"},
		{"clientAuth EKU on strict", portal.ProductIndividual,
			func(c *x509.Certificate) { c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) }, "e_smime_strict_eku_check"},
		{"serverAuth EKU on multipurpose", portal.ProductPremium,
			func(c *x509.Certificate) { c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) }, "e_smime_legacy_multipurpose_eku_check"},
		{"missing CRL DP", portal.ProductIndividual,
			func(c *x509.Certificate) { c.CRLDistributionPoints = nil }, "e_subscribers_shall_have_crl_distribution_points"},
		{"non-HTTP CRL DP", portal.ProductIndividual,
			func(c *x509.Certificate) { c.CRLDistributionPoints = []string{"ldap://pki.example.com/cn=crl"} }, "e_subscribers_crl_distribution_points_are_http"},
		{"dataEncipherment on RSA strict", portal.ProductIndividual,
			func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageDataEncipherment }, "e_rsa_key_usage_strict"},
		{"keyAgreement on RSA", portal.ProductIndividual,
			func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageKeyAgreement }, "e_rsa_key_usage_strict"},
		{"no SBR policy", portal.ProductIndividual,
			func(c *x509.Certificate) { c.Policies = nil }, "e_certdesk_smime_policy_count"},
		{"validity over 825 days", portal.ProductIndividual,
			func(c *x509.Certificate) { c.NotAfter = c.NotBefore.Add(826 * 24 * time.Hour) }, "e_certdesk_validity_over_825_days"},
		{"validity of 825 days and one second", portal.ProductIndividual,
			func(c *x509.Certificate) { c.NotAfter = c.NotBefore.Add(825 * 24 * time.Hour) }, "e_certdesk_validity_over_825_days"},
		{"serial of 32 bits", portal.ProductIndividual,
			func(c *x509.Certificate) { c.SerialNumber = big.NewInt(0x7fffffff) }, "e_certdesk_serial_entropy"},
		{"no AIA", portal.ProductIndividual,
			func(c *x509.Certificate) { c.OCSPServer, c.IssuingCertificateURL = nil, nil }, "e_certdesk_aia_missing"},
		{"duplicate address", portal.ProductIndividual,
			func(c *x509.Certificate) {
				c.EmailAddresses = append(c.EmailAddresses, strings.ToUpper(c.EmailAddresses[0]))
			}, "e_certdesk_duplicate_email"},
		{"no SKI", portal.ProductIndividual,
			func(c *x509.Certificate) { c.SubjectKeyId = nil }, "e_certdesk_ski_missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := a.signer.n.Load()
			req := requestFor(mustProduct(t, tc.product), rsaKey)
			req.mutate = tc.mutate
			is, err := a.Issue(req)
			var le *LintError
			if !errors.As(err, &le) {
				t.Fatalf("got %v (issued %v), want *LintError", err, is != nil)
			}
			if !le.Has(tc.want) {
				t.Fatalf("findings %v, want %s", le.Names(), tc.want)
			}
			if is != nil || a.signer.n.Load() != before {
				t.Fatal("the issuing key signed something")
			}
			if portal.ErrorCode(err) != portal.EInternal {
				t.Fatalf("lint error code %s", portal.ErrorCode(err))
			}
		})
	}
	// Control: the same request without a mistake is signed exactly once.
	before := a.signer.n.Load()
	if _, err := a.Issue(requestFor(mustProduct(t, portal.ProductIndividual), rsaKey)); err != nil {
		t.Fatal(err)
	}
	if a.signer.n.Load() != before+1 {
		t.Fatalf("signatures %d, want 1", a.signer.n.Load()-before)
	}
}

func TestValidityCaps(t *testing.T) {
	t.Parallel()
	clock := portal.NewFixedClock(testNow)
	a := freshCA(t, KeyP256, clock)
	p := mustProduct(t, portal.ProductIndividual)
	key := subscriberKeys()["p256"].Public()
	max := testNow.Add(825*24*time.Hour - time.Second)

	// Default and over-long requests are capped at 825 days (inclusive).
	for _, na := range []time.Time{{}, testNow.Add(3 * 365 * 24 * time.Hour)} {
		req := requestFor(p, key)
		req.NotAfter = na
		is, err := a.Issue(req)
		if err != nil {
			t.Fatal(err)
		}
		if !is.NotBefore.Equal(testNow) || !is.NotAfter.Equal(max) {
			t.Fatalf("validity %s .. %s, want %s .. %s", is.NotBefore, is.NotAfter, testNow, max)
		}
		if d := is.NotAfter.Sub(is.NotBefore) + time.Second; d != 825*24*time.Hour {
			t.Fatalf("validity %v", d)
		}
	}
	// PeriodEnd caps it further.
	req := requestFor(p, key)
	req.PeriodEnd = testNow.Add(400 * 24 * time.Hour)
	is, err := a.Issue(req)
	if err != nil || !is.NotAfter.Equal(req.PeriodEnd) {
		t.Fatalf("PeriodEnd cap: %v %v", err, is)
	}
	// A shorter NotAfter is kept.
	req = requestFor(p, key)
	req.NotAfter = testNow.Add(30 * 24 * time.Hour)
	if is, err = a.Issue(req); err != nil || !is.NotAfter.Equal(req.NotAfter) {
		t.Fatalf("short validity: %v", err)
	}
	// The clock moves: NotBefore follows it.
	clock.Advance(48 * time.Hour)
	if is, err = a.Issue(requestFor(p, key)); err != nil || !is.NotBefore.Equal(testNow.Add(48*time.Hour)) {
		t.Fatalf("after advance: %v %v", err, is.NotBefore)
	}
	// A period that already ended gives an empty validity: refused.
	req = requestFor(p, key)
	req.PeriodEnd = testNow
	if _, err = a.Issue(req); portal.ErrorCode(err) != portal.EInvalid {
		t.Fatalf("ended period: %v", err)
	}
	// Backdating more than 48 h is refused.
	req = requestFor(p, key)
	req.NotBefore = clock.Now().Add(-72 * time.Hour)
	if _, err = a.Issue(req); portal.ErrorCode(err) != portal.EInvalid {
		t.Fatalf("backdated: %v", err)
	}
	// Never past the issuing CA's expiry.
	clock.Set(a.IssuingCert().NotAfter.Add(-10 * 24 * time.Hour))
	if is, err = a.Issue(requestFor(p, key)); err != nil || !is.NotAfter.Equal(a.IssuingCert().NotAfter) {
		t.Fatalf("issuer expiry cap: %v", err)
	}
}

func TestSerials(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s := NewSerial()
		if s.Sign() <= 0 || s.BitLen() > 128 {
			t.Fatalf("serial %x", s)
		}
		if seen[s.String()] {
			t.Fatal("serial repeated")
		}
		seen[s.String()] = true
	}
	// Across 1000 serials every one of the 128 bit positions is seen set
	// and clear: all bits are random.
	for bit := 0; bit < 128; bit++ {
		ones := 0
		for k := range seen {
			n, _ := new(big.Int).SetString(k, 10)
			ones += int(n.Bit(bit))
		}
		if ones < 400 || ones > 600 {
			t.Fatalf("bit %d set %d of 1000 times", bit, ones)
		}
	}
	// A caller-recorded serial is used as is; a short one is refused.
	a := testCA(t, KeyP256)
	req := requestFor(mustProduct(t, portal.ProductIndividual), subscriberKeys()["p256"].Public())
	req.Serial = NewSerial()
	is, err := a.Issue(req)
	if err != nil || is.Serial.Cmp(req.Serial) != 0 || is.Certificate.SerialNumber.Cmp(req.Serial) != 0 {
		t.Fatalf("recorded serial not used: %v", err)
	}
	req.Serial = big.NewInt(12345)
	if _, err := a.Issue(req); err == nil {
		t.Fatal("short serial accepted")
	}
	// Two issuances without a serial differ.
	req.Serial = nil
	i1, _ := a.Issue(req)
	i2, _ := a.Issue(req)
	if i1.Serial.Cmp(i2.Serial) == 0 {
		t.Fatal("same serial twice")
	}
}

func TestSignatureHashPerIssuerKey(t *testing.T) {
	t.Parallel()
	p := mustProduct(t, portal.ProductIndividual)
	key := subscriberKeys()["p256"].Public()
	cases := []struct {
		issuer string
		hash   portal.SignatureHash
		ok     bool
	}{
		{KeyRSA2048, portal.SHA256, true}, {KeyRSA2048, portal.SHA384, true}, {KeyRSA2048, portal.SHA512, true},
		{KeyP256, portal.SHA256, true}, {KeyP256, portal.SHA384, false}, {KeyP256, portal.SHA512, false},
		{KeyP384, portal.SHA384, true}, {KeyP384, portal.SHA256, false}, {KeyP384, portal.SHA512, false},
		{KeyRSA2048, "md5", false},
	}
	for _, tc := range cases {
		req := requestFor(p, key)
		req.SignatureHash = tc.hash
		_, err := testCA(t, tc.issuer).Issue(req)
		if tc.ok != (err == nil) {
			t.Errorf("%s/%s: %v", tc.issuer, tc.hash, err)
		}
		var pe *portal.Error
		if !tc.ok && (!errors.As(err, &pe) || pe.Field != "signature_hash" || !strings.Contains(pe.Message, "not available")) {
			t.Errorf("%s/%s: unclear error %v", tc.issuer, tc.hash, err)
		}
	}
}

func TestIssueRequestRules(t *testing.T) {
	t.Parallel()
	a := testCA(t, KeyP256)
	key := subscriberKeys()["p256"].Public()
	mailbox := mustProduct(t, portal.ProductIndividual)
	sponsor := mustProduct(t, portal.ProductBusiness)
	org := mustProduct(t, portal.ProductOrganization)
	cases := []struct {
		name  string
		edit  func(*IssueRequest)
		field string
	}{
		{"no address", func(r *IssueRequest) { r.Emails = nil }, "emails"},
		{"bad address", func(r *IssueRequest) { r.Emails = []string{"not an address"} }, "emails"},
		{"duplicate address", func(r *IssueRequest) { r.Emails = []string{"a@example.com", "A@EXAMPLE.com"} }, "emails"},
		{"non-ASCII address", func(r *IssueRequest) { r.Emails = []string{"jürgen@example.com"} }, "emails"},
		{"name on mailbox-validated", func(r *IssueRequest) { r.CommonNameFromName, r.CommonName = true, "Jan" }, "common_name"},
		{"org on mailbox-validated", func(r *IssueRequest) { r.OrgName = "X B.V." }, "org_name"},
		{"sponsor without org", func(r *IssueRequest) { *r = requestFor(sponsor, key); r.OrgName = "" }, "org_name"},
		{"sponsor bad org identifier", func(r *IssueRequest) { *r = requestFor(sponsor, key); r.OrgIdentifier = "12345678" }, "org_identifier"},
		{"org identifier country mismatch", func(r *IssueRequest) { *r = requestFor(org, key); r.OrgIdentifier = "NTRDE-HRB123" }, "org_identifier"},
		{"sponsor without a name", func(r *IssueRequest) { *r = requestFor(sponsor, key); r.CommonNameFromName, r.CommonName = false, "" }, "common_name"},
		{"sponsor name of only dots", func(r *IssueRequest) { *r = requestFor(sponsor, key); r.CommonName = "- ." }, "given_name"},
		{"org CN not the org name", func(r *IssueRequest) { *r = requestFor(org, key); r.CommonNameFromName, r.CommonName = true, "Jan" }, "common_name"},
		{"RSA-1024 key", func(r *IssueRequest) {
			pub, _ := parsePEMCSRKey(mustRead(t, "testdata/rsa1024.csr.pem"))
			r.PublicKey = pub
		}, "csr"},
	}
	for _, tc := range cases {
		req := requestFor(mailbox, key)
		tc.edit(&req)
		_, err := a.Issue(req)
		var pe *portal.Error
		if !errors.As(err, &pe) || pe.Code != portal.EInvalid || pe.Field != tc.field {
			t.Errorf("%s: got %v, want invalid %s", tc.name, err, tc.field)
		}
	}

	// Sponsor ordered by address: CN is the address, names still present.
	req := requestFor(sponsor, key)
	req.CommonNameFromName = false
	req.GivenName, req.Surname = "Jan", "de Vries"
	is, err := a.Issue(req)
	if err != nil || is.Certificate.Subject.CommonName != req.Emails[0] {
		t.Fatalf("sponsor by address: %v", err)
	}
	if got := subjectAttrs(t, is.Certificate); got["2.5.4.42"] != "Jan" || got["2.5.4.4"] != "de Vries" {
		t.Fatalf("names %v", got)
	}
	// A single name goes into surname (SBR 7.1.4.2.2 e).
	req = requestFor(sponsor, key)
	req.CommonName = "Madonna"
	if is, err = a.Issue(req); err != nil {
		t.Fatal(err)
	}
	if got := subjectAttrs(t, is.Certificate); got["2.5.4.4"] != "Madonna" || got["2.5.4.42"] != "" {
		t.Fatalf("single name %v", got)
	}
	// Organization-validated CN may be the organization name.
	req = requestFor(org, key)
	req.CommonNameFromName = true
	if is, err = a.Issue(req); err != nil || is.Certificate.Subject.CommonName != req.OrgName {
		t.Fatalf("org CN: %v", err)
	}
	// An address longer than 64 characters: no CN, still in the SAN.
	req = requestFor(mailbox, key)
	long := strings.Repeat("a", 60) + "@example.com"
	req.Emails = []string{long}
	if is, err = a.Issue(req); err != nil || is.Certificate.Subject.CommonName != "" || is.Certificate.EmailAddresses[0] != long {
		t.Fatalf("long address: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProfilesValid(t *testing.T) {
	if err := ValidateProfiles(); err != nil {
		t.Fatal(err)
	}
	// A legacy generation or a mailbox product with an organization is
	// refused.
	bad := []portal.Product{
		{ID: "x", Type: portal.MailboxValidated, Generation: "legacy", KeyUsage: portal.DualUse},
		{ID: "y", Type: portal.MailboxValidated, Generation: portal.Strict, OrgInSubject: true, KeyUsage: portal.DualUse},
		{ID: "z", Type: portal.OrganizationValidated, Generation: portal.Strict, OrgInSubject: true, PersonalName: true, KeyUsage: portal.DualUse},
		{ID: "w", Type: portal.SponsorValidated, Generation: portal.Strict, OrgInSubject: true, PersonalName: true, KeyUsage: "weird"},
	}
	for _, p := range bad {
		if _, err := ProfileFor(p); err == nil {
			t.Errorf("product %s accepted", p.ID)
		}
	}
	// Each profile's policy OID is the SBR one.
	for _, p := range portal.Products {
		pr, _ := ProfileFor(p)
		want := asn1.ObjectIdentifier(portal.PolicyOID(p.Type, p.Generation))
		if pr.Policy.String() != want.String() {
			t.Errorf("%s policy %s, want %s", p.ID, pr.Policy, want)
		}
	}
}
