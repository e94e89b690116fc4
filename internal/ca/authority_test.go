package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"certdesk/internal/portal"
)

func TestInitFilesAndCACertificates(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KeyRSA2048, KeyP256, KeyP384} {
		a := testCA(t, kind)
		dir := filepath.Join(testCAsDir, kind)
		for _, f := range []string{RootKeyFile, IssuingKeyFile} {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v mode %v, want 0600", f, err, fi.Mode().Perm())
			}
		}
		for _, f := range []string{RootCertFile, IssuingCertFile} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || !bytes.HasPrefix(b, []byte("-----BEGIN CERTIFICATE-----")) {
				t.Fatalf("%s: %v", f, err)
			}
		}
		// A second Init into the same directory never overwrites keys.
		if _, err := Init(dir, InitOptions{Config: Config{BaseURL: testBase}}, portal.NewFixedClock(testNow)); err == nil {
			t.Fatal("Init overwrote existing CA material")
		}

		root, iss := a.RootCert(), a.IssuingCert()
		// Root: SBR 7.1.2.1.
		if rk, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || rk.Curve != elliptic.P384() || root.SignatureAlgorithm != x509.ECDSAWithSHA384 {
			t.Fatal("root is not P-384 / ECDSA-SHA384")
		}
		if !root.IsCA || root.MaxPathLen != -1 || len(root.ExtKeyUsage) != 0 || len(root.Policies) != 0 ||
			root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || len(root.SubjectKeyId) == 0 || root.CheckSignatureFrom(root) != nil {
			t.Fatalf("root profile: %+v", root)
		}
		// Issuing CA: SBR 7.1.2.2.
		if !iss.IsCA || iss.MaxPathLen != 0 || !iss.MaxPathLenZero {
			t.Fatal("issuing CA pathLen is not 0")
		}
		if !slices.Contains(iss.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) || slices.Contains(iss.ExtKeyUsage, x509.ExtKeyUsageServerAuth) ||
			slices.Contains(iss.ExtKeyUsage, x509.ExtKeyUsageAny) {
			t.Fatalf("issuing EKU %v", iss.ExtKeyUsage)
		}
		if iss.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature {
			t.Fatalf("issuing KU %b", iss.KeyUsage)
		}
		if !bytes.Equal(iss.AuthorityKeyId, root.SubjectKeyId) || len(iss.SubjectKeyId) == 0 ||
			!slices.Equal(iss.IssuingCertificateURL, []string{testBase + "/ca/root.crt"}) ||
			!strings.HasPrefix(iss.CRLDistributionPoints[0], "http://") || len(iss.Policies) != 1 {
			t.Fatalf("issuing extensions")
		}
		if iss.Subject.CommonName == "" || len(iss.Subject.Organization) != 1 || len(iss.Subject.Country) != 1 {
			t.Fatal("SBR 7.1.4.3.1: CN, O, C required")
		}
		if err := iss.CheckSignatureFrom(root); err != nil {
			t.Fatal(err)
		}
		// zlint has nothing against either CA certificate.
		for _, c := range []*x509.Certificate{root, iss} {
			if f, err := lintDER(c.Raw); err != nil || len(f) != 0 {
				t.Fatalf("%s lint: %v %+v", c.Subject.CommonName, err, f)
			}
		}
		if len(a.ChainDER()) != 2 || !bytes.Equal(a.ChainDER()[1], a.RootDER()) {
			t.Fatal("chain")
		}
		if got := a.IssuingCert().PublicKey; (kind == KeyRSA2048) != isRSA(got) {
			t.Fatalf("issuing key type %T for %s", got, kind)
		}
	}
	if _, err := os.Stat("/usr/bin/openssl"); err == nil {
		a := testCA(t, KeyRSA2048)
		root, issuing := caFiles(t, a)
		if out, err := runOpenSSL(t, "verify", "-x509_strict", "-attime", "1788264000", "-CAfile", root, issuing); err != nil {
			t.Fatalf("openssl verify issuing CA: %v %s", err, out)
		}
	}
}

func isRSA(k any) bool { _, ok := k.(interface{ Size() int }); return ok }

func TestInitOptions(t *testing.T) {
	t.Parallel()
	clock := portal.NewFixedClock(testNow)
	for _, base := range []string{"https://pki.example.com", "ftp://pki.example.com", "pki.example.com", ""} {
		if _, err := Init(t.TempDir(), InitOptions{Config: Config{BaseURL: base}, IssuingKeyType: KeyP256}, clock); err == nil {
			t.Errorf("base URL %q accepted (SBR 7.1.2.3: http only)", base)
		}
	}
	if _, err := Init(t.TempDir(), InitOptions{Config: Config{BaseURL: testBase}, IssuingKeyType: "rsa1024"}, clock); err == nil {
		t.Error("rsa1024 issuer accepted")
	}
	// localhost makes zlint warn about internal names: refused unless the
	// development switch is on.
	dev := Config{BaseURL: "http://localhost:8080/"}
	if _, err := Init(t.TempDir(), InitOptions{Config: dev, IssuingKeyType: KeyP256}, clock); err == nil ||
		!strings.Contains(err.Error(), "w_smime_aia_contains_internal_names") {
		t.Fatalf("localhost base: %v", err)
	}
	dev.AllowInternalNames = true
	a, err := Init(t.TempDir(), InitOptions{Config: dev, IssuingKeyType: KeyP256}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if a.OCSPURL() != "http://localhost:8080/ocsp" {
		t.Fatalf("trailing slash kept: %s", a.OCSPURL())
	}
}

func TestLoadAndImport(t *testing.T) {
	t.Parallel()
	clock := portal.NewFixedClock(testNow)
	dir := t.TempDir()
	orig, err := Init(dir, InitOptions{Config: Config{BaseURL: testBase}, IssuingKeyType: KeyP384}, clock)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Load(dir, Config{BaseURL: testBase}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if a.IssuerID() != orig.IssuerID() || a.RootID() != orig.RootID() || a.rootKey == nil {
		t.Fatal("Load gave another CA")
	}
	is := issueFor(t, a)
	if err := is.Certificate.CheckSignatureFrom(orig.IssuingCert()); err != nil {
		t.Fatal(err)
	}

	// Load refuses an expired issuing CA and a key file others can read.
	later := portal.NewFixedClock(orig.IssuingCert().NotAfter.Add(time.Hour))
	if _, err := Load(dir, Config{BaseURL: testBase}, later); err == nil {
		t.Fatal("expired issuing CA loaded")
	}
	os.Chmod(filepath.Join(dir, IssuingKeyFile), 0o644)
	if _, err := Load(dir, Config{BaseURL: testBase}, clock); err == nil {
		t.Fatal("world-readable key loaded")
	}
	os.Chmod(filepath.Join(dir, IssuingKeyFile), 0o600)

	// Import the issuing CA (with its root) into a new directory.
	keyPEM, _ := os.ReadFile(filepath.Join(dir, IssuingKeyFile))
	certPEM := append(orig.IssuingPEM(), orig.RootPEM()...)
	dir2 := t.TempDir()
	if err := Import(dir2, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir2, IssuingKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatal("imported key mode")
	}
	b, err := Load(dir2, Config{BaseURL: testBase}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if b.RootCert() == nil || !b.RootCert().Equal(orig.RootCert()) || b.rootKey != nil {
		t.Fatal("imported root")
	}
	issueFor(t, b)
	if err := Import(dir2, certPEM, keyPEM); err == nil {
		t.Fatal("Import overwrote existing material")
	}
	// Without the root: still loads, chain is the issuing CA alone.
	dir3 := t.TempDir()
	if err := Import(dir3, orig.IssuingPEM(), keyPEM); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(dir3, Config{BaseURL: testBase}, clock); err != nil || c.RootCert() != nil || len(c.ChainDER()) != 1 {
		t.Fatalf("rootless import: %v", err)
	}

	// A key of another CA, a leaf certificate, and a CA without
	// emailProtection are refused.
	testCA(t, KeyP256)
	otherKey, _ := os.ReadFile(filepath.Join(testCAsDir, KeyP256, IssuingKeyFile))
	if err := Import(t.TempDir(), orig.IssuingPEM(), otherKey); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched key: %v", err)
	}
	leafKey := subscriberKeys()["p256"]
	leafKeyDER, _ := x509.MarshalPKCS8PrivateKey(leafKey)
	leafKeyPEM := pemBlock("PRIVATE KEY", leafKeyDER)
	if err := Import(t.TempDir(), is.PEM(), leafKeyPEM); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Fatalf("leaf as CA: %v", err)
	}
	if err := Import(t.TempDir(), orig.RootPEM(), keyPEM); err == nil {
		t.Fatal("root with the issuing key accepted")
	}
	rootKeyPEM, _ := os.ReadFile(filepath.Join(dir, RootKeyFile))
	if err := Import(t.TempDir(), orig.RootPEM(), rootKeyPEM); err == nil || !strings.Contains(err.Error(), "emailProtection") {
		t.Fatalf("root (no EKU) as issuing CA: %v", err)
	}
}

func TestPKCS7Chain(t *testing.T) {
	t.Parallel()
	a := testCA(t, KeyRSA2048)
	is := issueFor(t, a)
	p7, err := PKCS7Chain(append([][]byte{is.DER}, is.Chain...)...)
	if err != nil {
		t.Fatal(err)
	}
	if quick, err := is.PKCS7(); err != nil || !bytes.Equal(quick, p7) {
		t.Fatalf("Issued.PKCS7 differs from PKCS7Chain: %v", err)
	}
	if _, err := PKCS7Chain([]byte("junk")); err == nil {
		t.Fatal("junk accepted")
	}
	if _, err := PKCS7Chain(); err == nil {
		t.Fatal("empty chain accepted")
	}
	f := writeTemp(t, t.TempDir(), "chain.p7b", p7)
	out, err := runOpenSSL(t, "pkcs7", "-inform", "DER", "-in", f, "-print_certs")
	if err != nil {
		t.Fatalf("openssl pkcs7: %v\n%s", err, out)
	}
	if strings.Count(out, "-----BEGIN CERTIFICATE-----") != 3 {
		t.Fatalf("want 3 certificates:\n%s", out)
	}
	for _, c := range []*x509.Certificate{is.Certificate, a.IssuingCert(), a.RootCert()} {
		if !strings.Contains(out, "CN = "+c.Subject.CommonName) {
			t.Fatalf("missing %s:\n%s", c.Subject.CommonName, out)
		}
	}
	// The certificates come back byte for byte, in order.
	got, err := parseCertsPEM([]byte(out))
	if err != nil || len(got) != 3 || !bytes.Equal(got[0].Raw, is.DER) || !bytes.Equal(got[2].Raw, a.RootDER()) {
		t.Fatal("certificates differ after the round trip")
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
