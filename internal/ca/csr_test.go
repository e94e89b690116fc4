package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"certdesk/internal/portal"
)

// fixture returns testdata/name, generating it with gen when missing or
// when the test runs with -update. The fixtures are committed so normal
// runs need neither openssl nor slow prime searches.
func fixture(t *testing.T, name string, gen func(t *testing.T) []byte) []byte {
	t.Helper()
	p := filepath.Join("testdata", name)
	if !*update {
		if b, err := os.ReadFile(p); err == nil {
			return b
		}
	}
	b := gen(t)
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func csrPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func nextPrime(x *big.Int) *big.Int {
	p := new(big.Int).Set(x)
	if p.Bit(0) == 0 {
		p.Add(p, big.NewInt(1))
	}
	for !p.ProbablyPrime(20) {
		p.Add(p, big.NewInt(2))
	}
	return p
}

// genFermat: two 1024-bit primes about 2^500 apart: n = p*q falls to
// Fermat's method in the first step.
func genFermat(t *testing.T) []byte {
	p, err := rand.Prime(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	gap, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 500))
	q := nextPrime(new(big.Int).Add(p, gap))
	k, err := rawKeyFromPrimes(p, q, 65537)
	if err != nil {
		t.Fatal(err)
	}
	return csrPEM(csrDER(t, k))
}

// genSmallFactor: n = 7919 * q, 2048 bits.
func genSmallFactor(t *testing.T) []byte {
	small := big.NewInt(7919)
	for {
		q, err := rand.Prime(rand.Reader, 2035)
		if err != nil {
			t.Fatal(err)
		}
		if new(big.Int).Mul(small, q).BitLen() != 2048 {
			continue
		}
		k, err := rawKeyFromPrimes(small, q, 65537)
		if err != nil {
			continue
		}
		return csrPEM(csrDER(t, k))
	}
}

// rocaPrime makes a 1024-bit prime of the Infineon RSALib form
// p = k*M + (65537^a mod M) over the reduced modulus M of the detector.
func rocaPrime(t *testing.T) *big.Int {
	// k just below (2^1024)/M so that p is close to 2^1024 and n = p*q has
	// 2048 bits.
	kMax := new(big.Int).Div(new(big.Int).Lsh(big.NewInt(1), 1024), rocaModulus)
	kMax.Sub(kMax, big.NewInt(1))
	for {
		a, _ := rand.Int(rand.Reader, rocaOrder)
		base := new(big.Int).Exp(rocaGenerator, a, rocaModulus)
		off, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 790))
		k := new(big.Int).Sub(kMax, off)
		for i := 0; i < 5000; i++ {
			p := new(big.Int).Add(new(big.Int).Mul(k, rocaModulus), base)
			if p.BitLen() == 1024 && p.ProbablyPrime(20) {
				return p
			}
			k.Sub(k, big.NewInt(1))
		}
	}
}

func genROCA(t *testing.T) []byte {
	for {
		p, q := rocaPrime(t), rocaPrime(t)
		if new(big.Int).Mul(p, q).BitLen() != 2048 {
			continue
		}
		k, err := rawKeyFromPrimes(p, q, 65537)
		if err != nil {
			continue
		}
		return csrPEM(csrDER(t, k))
	}
}

// genOpenSSL runs openssl to make a CSR for a new key of the given options.
func genOpenSSL(keyArgs ...string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		dir := t.TempDir()
		key := filepath.Join(dir, "key.pem")
		args := append([]string{"genpkey", "-out", key}, keyArgs...)
		if out, err := exec.Command(openssl(t), args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		out, err := exec.Command(openssl(t), "req", "-new", "-key", key, "-subj", "/CN=ignored/O=Ignored Org",
			"-addext", "subjectAltName=email:ignored@example.com,DNS:www.example.com").Output()
		if err != nil {
			t.Fatalf("openssl req: %v", err)
		}
		return out
	}
}

func genGo(kind string) func(t *testing.T) []byte {
	return func(t *testing.T) []byte {
		switch kind {
		case "p521":
			k, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
			return csrPEM(csrDER(t, k))
		}
		t.Fatalf("unknown %s", kind)
		return nil
	}
}

func TestROCAParameters(t *testing.T) {
	// 65537 has order rocaOrder modulo rocaModulus: g^ord = 1 and
	// g^(ord/p) != 1 for every prime p dividing ord.
	one := big.NewInt(1)
	if new(big.Int).Exp(rocaGenerator, rocaOrder, rocaModulus).Cmp(one) != 0 {
		t.Fatal("65537^ord != 1 mod M")
	}
	prod := big.NewInt(1)
	for _, pp := range rocaPrimePowers {
		prod.Mul(prod, big.NewInt(pp))
	}
	for _, p := range []int64{2, 3, 5, 7, 11, 13, 17, 23, 29, 37, 41, 53, 83} {
		e := new(big.Int).Div(rocaOrder, big.NewInt(p))
		if new(big.Int).Exp(rocaGenerator, e, rocaModulus).Cmp(one) == 0 {
			t.Fatalf("order is not exact at prime %d", p)
		}
	}
	if prod.Cmp(rocaOrder) != 0 {
		t.Fatalf("prime powers multiply to %v, want %v", prod, rocaOrder)
	}
}

func TestParseCSR(t *testing.T) {
	t.Parallel()
	keys := subscriberKeys()
	good := map[string][]byte{}
	for _, n := range subscriberKeyNames {
		good[n] = csrDER(t, keys[n])
	}
	ca := testCA(t, KeyRSA2048)

	// A tampered CSR: one byte of the subject changed after signing.
	tampered := bytes.Clone(good["p256"])
	i := bytes.Index(tampered, []byte("ignored subject"))
	tampered[i] = 'I'
	// A CSR whose signature bits are damaged.
	badSig := bytes.Clone(good["rsa2048"])
	badSig[len(badSig)-1] ^= 0xff

	withCRLF := []byte("\r\n  \t" + strings.ReplaceAll(string(csrPEM(good["rsa2048"])), "\n", "\r\n") + "\r\n\r\n  ")
	newLabel := pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: good["p384"]})
	bare := []byte(base64.StdEncoding.EncodeToString(good["rsa3072"]))
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(keys["p256"])
	pkcs1 := x509.MarshalPKCS1PrivateKey(keys["rsa2048"].(*rsa.PrivateKey))
	ecKey, _ := x509.MarshalECPrivateKey(keys["p256"].(*ecdsa.PrivateKey))
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	tooLarge := append(csrPEM(good["rsa2048"]), bytes.Repeat([]byte(" "), MaxCSRSize)...)

	cases := []struct {
		name     string
		input    []byte
		wantKey  string // "" = accepted
		weakness string
	}{
		{"rsa2048 PEM", csrPEM(good["rsa2048"]), "", ""},
		{"rsa3072 DER", good["rsa3072"], "", ""},
		{"rsa4096 PEM", csrPEM(good["rsa4096"]), "", ""},
		{"p256 PEM", csrPEM(good["p256"]), "", ""},
		{"p384 NEW CERTIFICATE REQUEST label", newLabel, "", ""},
		{"CRLF and blanks around", withCRLF, "", ""},
		{"bare base64 without armour", bare, "", ""},
		{"DER with trailing newline", append(bytes.Clone(good["p256"]), '\n'), "", ""},
		{"openssl rsa2048 with SAN and O (ignored)", fixture(t, "openssl-rsa2048.csr.pem", genOpenSSL("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")), "", ""},
		{"openssl p256", fixture(t, "openssl-p256.csr.pem", genOpenSSL("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")), "", ""},

		{"empty", []byte(" \r\n\t "), KeyCSREmpty, ""},
		{"too large", tooLarge, KeyCSRTooLarge, ""},
		{"PEM PRIVATE KEY", pemOf("PRIVATE KEY", pkcs8), KeyCSRPrivateKey, ""},
		{"PEM ENCRYPTED PRIVATE KEY", pemOf("ENCRYPTED PRIVATE KEY", []byte("opaque")), KeyCSRPrivateKey, ""},
		{"PEM RSA PRIVATE KEY", pemOf("RSA PRIVATE KEY", pkcs1), KeyCSRPrivateKey, ""},
		{"PEM EC PRIVATE KEY", pemOf("EC PRIVATE KEY", ecKey), KeyCSRPrivateKey, ""},
		{"private key pasted after the CSR", append(csrPEM(good["p256"]), pemOf("PRIVATE KEY", pkcs8)...), KeyCSRPrivateKey, ""},
		{"damaged private key PEM", []byte("-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----\n"), KeyCSRPrivateKey, ""},
		{"DER PKCS#8 private key", pkcs8, KeyCSRPrivateKey, ""},
		{"DER PKCS#1 private key", pkcs1, KeyCSRPrivateKey, ""},
		{"PEM certificate", ca.IssuingPEM(), KeyCSRCertificate, ""},
		{"DER certificate", ca.IssuingDER(), KeyCSRCertificate, ""},
		{"two PEM CSRs", append(csrPEM(good["rsa2048"]), csrPEM(good["p256"])...), KeyCSRMultiple, ""},
		{"two DER CSRs", append(bytes.Clone(good["rsa2048"]), good["p256"]...), KeyCSRMultiple, ""},
		{"CSR and certificate", append(csrPEM(good["p256"]), ca.IssuingPEM()...), KeyCSRMultiple, ""},
		{"garbage", []byte("hello, this is not a CSR"), KeyCSRParse, ""},
		{"truncated PEM", csrPEM(good["rsa2048"])[:200], KeyCSRParse, ""},
		{"tampered subject", csrPEM(tampered), KeyCSRBadSignature, ""},
		{"damaged signature", badSig, KeyCSRBadSignature, ""},
		{"RSA-1024 (openssl)", fixture(t, "rsa1024.csr.pem", genOpenSSL("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024")), KeyCSRRSASize, ""},
		{"exponent 3 (openssl)", fixture(t, "rsa-e3.csr.pem", genOpenSSL("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-pkeyopt", "rsa_keygen_pubexp:3")), KeyCSRRSAExponent, ""},
		{"Ed25519 (openssl)", fixture(t, "ed25519.csr.pem", genOpenSSL("-algorithm", "ED25519")), KeyCSRKeyType, ""},
		{"P-521", fixture(t, "p521.csr.pem", genGo("p521")), KeyCSREcCurve, ""},
		{"Fermat: close primes", fixture(t, "fermat.csr.pem", genFermat), KeyCSRWeakKey, "fermat"},
		{"small factor 7919", fixture(t, "smallfactor.csr.pem", genSmallFactor), KeyCSRWeakKey, "small_factor"},
		{"ROCA fingerprint", fixture(t, "roca.csr.pem", genROCA), KeyCSRWeakKey, "roca"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := ParseCSR(tc.input)
			if tc.wantKey == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if CheckPublicKey(pub) != nil {
					t.Fatal("accepted key fails CheckPublicKey")
				}
				return
			}
			var pe *portal.Error
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want *portal.Error %s", err, tc.wantKey)
			}
			if pe.Code != portal.EInvalid || pe.Field != "csr" || pe.Key != tc.wantKey || pe.Message == "" {
				t.Fatalf("got code=%s field=%s key=%s msg=%q, want key %s", pe.Code, pe.Field, pe.Key, pe.Message, tc.wantKey)
			}
			if tc.weakness != "" && pe.Data["weakness"] != tc.weakness {
				t.Fatalf("weakness %v, want %s", pe.Data["weakness"], tc.weakness)
			}
			// The input is never echoed.
			if strings.Contains(err.Error(), "MII") || strings.Contains(err.Error(), "BEGIN") || len(err.Error()) > 200 {
				t.Fatalf("error may echo input: %q", err.Error())
			}
		})
		// ParseAcceptedCSR (a stored CSR, verified at intake): the same
		// answer, except that a bad self-signature is not looked at again.
		t.Run("accepted/"+tc.name, func(t *testing.T) {
			_, err := ParseAcceptedCSR(tc.input)
			want := tc.wantKey
			if want == KeyCSRBadSignature {
				want = ""
			}
			if want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			var pe *portal.Error
			if want != "" && (!errors.As(err, &pe) || pe.Key != want) {
				t.Fatalf("got %v, want %s", err, want)
			}
		})
	}
}

func TestParseCSRMessages(t *testing.T) {
	t.Parallel()
	_, err := ParseCSR([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	if got := portal.ErrorMessage(err); got != "This is a private key. Never share it; paste the certificate signing request (CSR) instead." {
		t.Fatalf("private key message %q", got)
	}
	_, err = ParseCSR(testCA(t, KeyP256).IssuingPEM())
	if got := portal.ErrorMessage(err); got != "This is a certificate, not a CSR." {
		t.Fatalf("certificate message %q", got)
	}
	for k, m := range csrMessages {
		if m == "" || !strings.HasPrefix(k, "csr.") {
			t.Fatalf("bad message entry %s", k)
		}
	}
}

func TestWeakKeyChecksPassNormalKeys(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"rsa2048", "rsa3072", "rsa4096"} {
		pub := subscriberKeys()[n].Public().(*rsa.PublicKey)
		if hasSmallFactor(pub.N) || rocaFingerprint(pub.N) {
			t.Fatalf("%s flagged", n)
		}
		if _, ok := fermatFactor(pub.N); ok {
			t.Fatalf("%s flagged by Fermat", n)
		}
	}
}

func TestFermatFindsFactor(t *testing.T) {
	t.Parallel()
	pub, err := parsePEMCSRKey(fixture(t, "fermat.csr.pem", genFermat))
	if err != nil {
		t.Fatal(err)
	}
	n := pub.(*rsa.PublicKey).N
	f, ok := fermatFactor(n)
	if !ok || new(big.Int).Mod(n, f).Sign() != 0 || f.Cmp(big.NewInt(1)) == 0 {
		t.Fatal("Fermat did not return a real factor")
	}
}

func parsePEMCSRKey(b []byte) (any, error) {
	blk, _ := pem.Decode(b)
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, err
	}
	return csr.PublicKey, nil
}

// TestFermatRounds: with p near 2^40, Fermat needs about gap²/(8·2^40)
// steps, so a 2^25 gap (about 128 steps) is found and a 2^30 gap (about
// 131,000 steps) is beyond fermatRounds.
func TestFermatRounds(t *testing.T) {
	t.Parallel()
	p := nextPrime(big.NewInt(1 << 40))
	for _, tc := range []struct {
		gap  int64
		want bool
	}{{1 << 10, true}, {1 << 20, true}, {1 << 25, true}, {1 << 30, false}} {
		q := nextPrime(new(big.Int).Add(p, big.NewInt(tc.gap)))
		n := new(big.Int).Mul(p, q)
		f, ok := fermatFactor(n)
		if ok != tc.want {
			t.Fatalf("gap 2^%d: found=%v, want %v", big.NewInt(tc.gap).BitLen()-1, ok, tc.want)
		}
		if ok && f.Cmp(p) != 0 && f.Cmp(q) != 0 {
			t.Fatalf("gap %d: factor %v is neither p nor q", tc.gap, f)
		}
	}
}
