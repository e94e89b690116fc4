package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"

	"certdesk/internal/portal"
)

// TestLintedTBSIsWhatTheCAKeySigns: the captured tbsCertificate (what is
// linted) is byte for byte the one x509.CreateCertificate signs with the
// real issuing key, and the one a throwaway key of any size under a copy
// of the issuer would have given (the old lint method: the TBS holds the
// signature algorithm, not the key). Issue then signs exactly those bytes.
func TestLintedTBSIsWhatTheCAKeySigns(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KeyRSA2048, KeyP256, KeyP384} {
		a := testCA(t, kind)
		for _, pid := range []portal.ProductID{portal.ProductIndividual, portal.ProductBusiness, portal.ProductDigitalSignature} {
			for _, sub := range []string{"rsa2048", "p256"} {
				req := requestFor(mustProduct(t, pid), subscriberKeys()[sub].Public())
				req.Serial = NewSerial()
				tmpl, err := a.buildTemplate(req)
				if err != nil {
					t.Fatal(err)
				}
				tbs, err := a.lintedTBS(tmpl, req.PublicKey)
				if err != nil {
					t.Fatalf("%s %s %s: %v", kind, pid, sub, err)
				}
				// The real issuing key through CreateCertificate.
				der, err := x509.CreateCertificate(rand.Reader, tmpl, a.issuer, req.PublicKey, a.signer.Signer)
				if err != nil {
					t.Fatal(err)
				}
				real, _ := x509.ParseCertificate(der)
				if !bytes.Equal(real.RawTBSCertificate, tbs) {
					t.Fatalf("%s %s %s: linted TBS differs from CreateCertificate's with the CA key", kind, pid, sub)
				}
				// Throwaway keys of other sizes under a copy of the issuer.
				if kind == KeyRSA2048 {
					for _, k := range []crypto.Signer{throwawayRSA(t, 1024), subscriberKeys()["rsa3072"]} {
						fake := *a.issuer
						fake.PublicKey = k.Public()
						d, err := x509.CreateCertificate(rand.Reader, tmpl, &fake, req.PublicKey, k)
						if err != nil {
							t.Fatal(err)
						}
						c, _ := x509.ParseCertificate(d)
						if !bytes.Equal(c.RawTBSCertificate, tbs) {
							t.Fatalf("TBS differs with a %d-bit throwaway key", k.Public().(*rsa.PublicKey).N.BitLen())
						}
					}
				}
				// Issue signs these bytes (same request, same serial, fixed clock).
				is, err := a.Issue(req)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(is.Certificate.RawTBSCertificate, tbs) {
					t.Fatalf("%s %s %s: issued TBS differs from the linted one", kind, pid, sub)
				}
				if err := is.Certificate.CheckSignatureFrom(a.IssuingCert()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func throwawayRSA(t *testing.T, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// badSigner returns a signature that does not verify (a fault).
type badSigner struct{ crypto.Signer }

func (b badSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	sig, err := b.Signer.Sign(r, d, o)
	if err == nil {
		sig[len(sig)/2] ^= 0x40
	}
	return sig, err
}

// A faulty signature never becomes a certificate (as CreateCertificate's
// own check): Issue verifies it with the issuing CA's public key.
func TestFaultySignatureIsRefused(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KeyRSA2048, KeyP256} {
		a := freshCA(t, kind, portal.NewFixedClock(testNow))
		a.signer = &countingSigner{Signer: badSigner{a.signer.Signer}}
		is, err := a.Issue(requestFor(mustProduct(t, portal.ProductIndividual), subscriberKeys()["p256"].Public()))
		if err == nil || is != nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("%s: got %v, %v", kind, is != nil, err)
		}
		var le *LintError
		if errors.As(err, &le) {
			t.Fatal("a signing fault reported as a lint finding")
		}
	}
}

// TestLintDERMatchesZlint: running the lint list directly gives exactly the
// findings of zlint.LintCertificateEx with the same registry, on clean and
// broken certificates.
func TestLintDERMatchesZlint(t *testing.T) {
	t.Parallel()
	a := testCA(t, KeyRSA2048)
	reg, err := lintRegistry()
	if err != nil {
		t.Fatal(err)
	}
	mutations := []func(*x509.Certificate){
		nil,
		func(c *x509.Certificate) { c.Subject.CommonName = "Jan de Vries" },
		func(c *x509.Certificate) { c.ExtKeyUsage = append(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) },
		func(c *x509.Certificate) { c.CRLDistributionPoints = []string{"ldap://pki.example.com/cn=crl"} },
		func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageDataEncipherment | x509.KeyUsageKeyAgreement },
		func(c *x509.Certificate) { c.Policies = nil },
	}
	total := 0
	for i, m := range mutations {
		req := requestFor(mustProduct(t, portal.ProductIndividual), subscriberKeys()["rsa2048"].Public())
		req.mutate = m
		tmpl, err := a.buildTemplate(req)
		if err != nil {
			t.Fatal(err)
		}
		tbs, err := a.tbsFor(tmpl, req.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		der, err := assembleCertificate(tbs, staticSignature(a.issuer.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		got, err := lintDER(der)
		if err != nil {
			t.Fatal(err)
		}
		zc, err := zx509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for name, r := range zlint.LintCertificateEx(zc, reg).Results {
			if r.Status == lint.Error || r.Status == lint.Warn || r.Status == lint.Fatal {
				want = append(want, name)
			}
		}
		slices.Sort(want)
		var names []string
		for _, f := range got {
			names = append(names, f.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("mutation %d: lintDER %v, zlint %v", i, names, want)
		}
		if i > 0 && len(want) == 0 {
			t.Errorf("mutation %d: zlint found nothing (the test would prove nothing)", i)
		}
		total += len(want)
	}
	if total == 0 {
		t.Fatal("no findings at all")
	}
}
