package keygen

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// One RSA key for the tests that do not test key generation itself: a
// 2048-bit key takes 50-500 ms to make.
var (
	sharedOnce sync.Once
	sharedKey  *rsa.PrivateKey
	sharedErr  error
)

func testKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	sharedOnce.Do(func() { sharedKey, sharedErr = rsa.GenerateKey(rand.Reader, KeyBits) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	// A copy, so a test that zeroes its key does not break the others.
	k := *sharedKey
	k.D = new(big.Int).Set(sharedKey.D)
	k.Primes = []*big.Int{new(big.Int).Set(sharedKey.Primes[0]), new(big.Int).Set(sharedKey.Primes[1])}
	k.Precomputed = rsa.PrecomputedValues{}
	k.Precompute()
	return &k
}

func parseCSR(t *testing.T, csrPEM []byte) *x509.CertificateRequest {
	t.Helper()
	block, rest := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not one PEM CERTIFICATE REQUEST: %q", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatalf("ParseCertificateRequest: %v", err)
	}
	return csr
}

func TestCSRParsesAndVerifies(t *testing.T) {
	key := testKey(t)
	csrPEM, err := CSR(key, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	csr := parseCSR(t, csrPEM)
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("proof of possession does not verify: %v", err)
	}
	if csr.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Fatalf("signature algorithm %v, want SHA256WithRSA", csr.SignatureAlgorithm)
	}
	pub, ok := csr.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		t.Fatal("CSR public key is not the key's")
	}
	if pub.N.BitLen() != 2048 || pub.E != 65537 {
		t.Fatalf("CSR key %d bits e=%d", pub.N.BitLen(), pub.E)
	}
	if csr.Subject.CommonName != "alice@example.com" || len(csr.Subject.Names) != 1 {
		t.Fatalf("subject %v, want only CN=alice@example.com", csr.Subject)
	}
	if csr.Version != 0 {
		t.Fatalf("version %d", csr.Version)
	}

	// OpenSSL agrees that the self-signature is good.
	if _, err := exec.LookPath("openssl"); err == nil {
		cmd := exec.Command("openssl", "req", "-verify", "-noout")
		cmd.Stdin = bytes.NewReader(csrPEM)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl req -verify: %v\n%s", err, out)
		}
	}
}

func TestCSRSignatureBindsTheRequest(t *testing.T) {
	key := testKey(t)
	csrPEM, err := CSR(key, "bob@example.org")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	der := append([]byte(nil), block.Bytes...)
	// Change one letter of the address inside the signed part.
	i := bytes.Index(der, []byte("bob@"))
	if i < 0 {
		t.Fatal("address not in CSR")
	}
	der[i] = 'c'
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if csr.CheckSignature() == nil {
		t.Fatal("a changed request still verifies")
	}
}

func TestCSRLongAddressGetsEmptySubject(t *testing.T) {
	key := testKey(t)
	email := strings.Repeat("a", 60) + "@example.com"
	csrPEM, err := CSR(key, email)
	if err != nil {
		t.Fatal(err)
	}
	csr := parseCSR(t, csrPEM)
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	if len(csr.Subject.Names) != 0 {
		t.Fatalf("subject %v, want empty for an address over 64 characters", csr.Subject)
	}
}

func TestCSRRefusesOtherKeysAndBadInput(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CSR(ec, "a@example.com"); !errors.Is(err, ErrNotRSA2048) {
		t.Fatalf("ECDSA key: %v, want ErrNotRSA2048", err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CSR(small, "a@example.com"); !errors.Is(err, ErrNotRSA2048) {
		t.Fatalf("RSA-1024: %v, want ErrNotRSA2048", err)
	}
	if _, err := CSR(testKey(t), ""); !errors.Is(err, ErrEmail) {
		t.Fatalf("empty email: %v", err)
	}
	if _, err := CSR(testKey(t), "a\xff@example.com"); !errors.Is(err, ErrEmail) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
}

func TestImportPKCS8(t *testing.T) {
	key := testKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ImportPKCS8(der)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(key) {
		t.Fatal("imported key differs")
	}
	csrPEM, err := CSR(got, "carol@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := parseCSR(t, csrPEM).CheckSignature(); err != nil {
		t.Fatal(err)
	}

	// What OpenSSL writes (the same structure WebCrypto exports).
	if _, err := exec.LookPath("openssl"); err == nil {
		// genpkey -outform DER writes PKCS#1 here; pkcs8 -topk8 makes PKCS#8.
		out, err := exec.Command("sh", "-c", "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null"+
			" | openssl pkcs8 -topk8 -nocrypt -outform DER").Output()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ImportPKCS8(out); err != nil {
			t.Fatalf("OpenSSL PKCS#8: %v", err)
		}
	}
}

func TestImportPKCS8Refuses(t *testing.T) {
	key := testKey(t)
	good, _ := x509.MarshalPKCS8PrivateKey(key)

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER, _ := x509.MarshalPKCS8PrivateKey(small)

	// A wrong private exponent: the key fails validation.
	// Written by hand: x509.MarshalPKCS8PrivateKey refuses such a key.
	badDER := pkcs8By(key.N, key.E, new(big.Int).Add(key.D, big.NewInt(2)), key.Primes[0], key.Primes[1])
	if k, err := ImportPKCS8(pkcs8By(key.N, key.E, key.D, key.Primes[0], key.Primes[1])); err != nil || !k.Equal(key) {
		t.Fatalf("hand-written PKCS#8 of the good key: %v", err)
	}
	// p and q that do not multiply to n.
	badPQ := pkcs8By(key.N, key.E, key.D, key.Primes[1], new(big.Int).Add(key.Primes[0], big.NewInt(2)))

	cases := map[string][]byte{
		"empty":       nil,
		"truncated":   good[:len(good)-10],
		"trailing":    append(append([]byte(nil), good...), 0),
		"ECDSA":       ecDER,
		"RSA-1024":    smallDER,
		"wrong D":     badDER,
		"wrong p, q":  badPQ,
		"PKCS#1 only": x509.MarshalPKCS1PrivateKey(key),
	}
	for name, der := range cases {
		if k, err := ImportPKCS8(der); err == nil || k != nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// pkcs8By writes a PKCS#8 RSA key from its parts (CRT values set to 1: they
// are recomputed on import).
func pkcs8By(n *big.Int, e int, d, p, q *big.Int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidRSAEncryption)
			b.AddASN1NULL()
		})
		b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(0)
				b.AddASN1BigInt(n)
				b.AddASN1Int64(int64(e))
				b.AddASN1BigInt(d)
				b.AddASN1BigInt(p)
				b.AddASN1BigInt(q)
				b.AddASN1Int64(1)
				b.AddASN1Int64(1)
				b.AddASN1Int64(1)
			})
		})
	})
	return b.BytesOrPanic()
}

// testCA is a tiny CA that signs a leaf for a CSR the way the server does in
// outline (emailProtection, the CSR's key).
type testCA struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
	rootDER, interDER []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{}
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ik, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootT := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	var err error
	if ca.rootDER, err = x509.CreateCertificate(rand.Reader, rootT, rootT, rk.Public(), rk); err != nil {
		t.Fatal(err)
	}
	ca.root, _ = x509.ParseCertificate(ca.rootDER)
	interT := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test S/MIME CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	if ca.interDER, err = x509.CreateCertificate(rand.Reader, interT, ca.root, ik.Public(), rk); err != nil {
		t.Fatal(err)
	}
	ca.inter, _ = x509.ParseCertificate(ca.interDER)
	ca.rootKey, ca.interKey = rk, ik
	return ca
}

func (ca *testCA) sign(t *testing.T, csrPEM []byte, email string) []byte {
	t.Helper()
	csr := parseCSR(t, csrPEM)
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	leafT := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: email},
		EmailAddresses: []string{email},
		NotBefore:      now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	der, err := x509.CreateCertificate(rand.Reader, leafT, ca.inter, csr.PublicKey, ca.interKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// opensslInfo runs `openssl pkcs12 -info -nokeys` on p12 and returns its
// combined output and error.
func opensslInfo(t *testing.T, p12 []byte, password string, legacy bool) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.p12")
	if err := os.WriteFile(path, p12, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"pkcs12", "-info", "-nokeys", "-in", path, "-passin", "pass:" + password}
	if legacy {
		args = append(args, "-legacy")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

func TestPKCS12BothModes(t *testing.T) {
	key := testKey(t)
	const email = "dave@example.com"
	csrPEM, err := CSR(key, email)
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	leafDER := ca.sign(t, csrPEM, email)
	const password = "correct horse battery"

	haveOpenSSL := true
	if _, err := exec.LookPath("openssl"); err != nil {
		haveOpenSSL = false
		t.Log("openssl not found; only go-pkcs12 decoding is checked")
	}

	for _, tc := range []struct {
		mode   string
		legacy bool
		want   []string // in openssl -info output
	}{
		{ModeModern, false, []string{"MAC: sha256", "PBES2, PBKDF2, AES-256-CBC"}},
		{ModeCompatible, true, []string{"MAC: sha1", "pbeWithSHA1And3-KeyTripleDES-CBC"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			// DER in, as the page passes it (it decodes the PEM itself).
			p12, err := PKCS12(key, leafDER, [][]byte{ca.interDER, ca.rootDER}, password, tc.mode)
			if err != nil {
				t.Fatal(err)
			}
			gotKey, gotLeaf, gotChain, err := pkcs12.DecodeChain(p12, password)
			if err != nil {
				t.Fatalf("DecodeChain: %v", err)
			}
			if k, ok := gotKey.(*rsa.PrivateKey); !ok || !k.Equal(key) {
				t.Fatal("the .p12 holds another key")
			}
			if !bytes.Equal(gotLeaf.Raw, leafDER) {
				t.Fatal("the .p12 holds another leaf")
			}
			if len(gotChain) != 2 || !bytes.Equal(gotChain[0].Raw, ca.interDER) || !bytes.Equal(gotChain[1].Raw, ca.rootDER) {
				t.Fatalf("chain has %d certificates, want intermediate then root", len(gotChain))
			}
			if _, _, _, err := pkcs12.DecodeChain(p12, password+"x"); !errors.Is(err, pkcs12.ErrIncorrectPassword) {
				t.Fatalf("wrong password: %v, want ErrIncorrectPassword", err)
			}

			if !haveOpenSSL {
				return
			}
			out, err := opensslInfo(t, p12, password, tc.legacy)
			if err != nil {
				t.Fatalf("openssl pkcs12 (legacy=%v): %v\n%s", tc.legacy, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("openssl output lacks %q:\n%s", w, out)
				}
			}
			if n := strings.Count(out, "BEGIN CERTIFICATE"); n != 3 {
				t.Errorf("openssl shows %d certificates, want 3", n)
			}
			if out, err := opensslInfo(t, p12, "not the password", tc.legacy); err == nil {
				t.Fatalf("openssl opened it with a wrong password:\n%s", out)
			}
		})
	}
}

func TestPKCS12Refuses(t *testing.T) {
	key := testKey(t)
	ca := newTestCA(t)
	csrPEM, _ := CSR(key, "erin@example.com")
	leaf := ca.sign(t, csrPEM, "erin@example.com")
	csrDER := parseCSR(t, csrPEM).Raw

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherCSR, _ := CSR(other, "erin@example.com")
	otherLeaf := ca.sign(t, otherCSR, "erin@example.com")

	good := "ten chars!"
	if len(good) != MinPasswordLength {
		t.Fatal("fixture")
	}
	if _, err := PKCS12(key, leaf, nil, good, ModeModern); err != nil {
		t.Fatalf("a %d-character password was refused: %v", MinPasswordLength, err)
	}
	checks := []struct {
		name string
		err  error
		run  func() ([]byte, error)
	}{
		{"empty password", ErrPasswordEmpty, func() ([]byte, error) { return PKCS12(key, leaf, nil, "", ModeModern) }},
		{"9 characters", ErrPasswordTooShort, func() ([]byte, error) { return PKCS12(key, leaf, nil, "nine char", ModeModern) }},
		{"9 runes, more bytes", ErrPasswordTooShort, func() ([]byte, error) { return PKCS12(key, leaf, nil, "ééééééééé", ModeCompatible) }},
		{"unknown mode", ErrMode, func() ([]byte, error) { return PKCS12(key, leaf, nil, good, "rc2") }},
		{"certificate of another key", ErrKeyMismatch, func() ([]byte, error) { return PKCS12(key, otherLeaf, nil, good, ModeModern) }},
		{"CA certificate as leaf", ErrKeyMismatch, func() ([]byte, error) { return PKCS12(key, ca.interDER, nil, good, ModeModern) }},
		{"garbage leaf", ErrCertificate, func() ([]byte, error) { return PKCS12(key, []byte("hello"), nil, good, ModeModern) }},
		{"CSR as leaf", ErrCertificate, func() ([]byte, error) { return PKCS12(key, csrDER, nil, good, ModeModern) }},
		{"PEM leaf (the page decodes PEM)", ErrCertificate, func() ([]byte, error) { return PKCS12(key, pemCert(leaf), nil, good, ModeModern) }},
		{"garbage chain", ErrCertificate, func() ([]byte, error) { return PKCS12(key, leaf, [][]byte{{0x30, 0x00}}, good, ModeModern) }},
		{"no key", ErrNoKey, func() ([]byte, error) { return PKCS12(nil, leaf, nil, good, ModeModern) }},
	}
	for _, c := range checks {
		p12, err := c.run()
		if !errors.Is(err, c.err) || p12 != nil {
			t.Errorf("%s: got %v, want %v", c.name, err, c.err)
		}
	}
}

func TestZeroDropsTheKey(t *testing.T) {
	key := testKey(t)
	ca := newTestCA(t)
	csrPEM, _ := CSR(key, "frank@example.com")
	leaf := ca.sign(t, csrPEM, "frank@example.com")
	d := key.D
	Zero(key)
	if d.Sign() != 0 || key.D != nil || key.Primes != nil {
		t.Fatal("private exponent still present after Zero")
	}
	if _, err := PKCS12(key, leaf, nil, "long enough password", ModeModern); !errors.Is(err, ErrNoKey) {
		t.Fatalf("PKCS12 after Zero: %v, want ErrNoKey", err)
	}
	if _, err := CSR(key, "frank@example.com"); err == nil {
		t.Fatal("CSR signed with a zeroed key")
	}
}
