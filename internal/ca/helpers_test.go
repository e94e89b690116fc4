package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"certdesk/internal/portal"
)

var update = flag.Bool("update", false, "regenerate the CSR fixtures in testdata/")

// testNow is the fixed time of every test CA; openssl checks use -attime.
var testNow = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

const testBase = "http://pki.example.com"

// Subscriber keys are made once per test binary (RSA-4096 takes seconds).
var subscriberKeys = sync.OnceValue(func() map[string]crypto.Signer {
	m := map[string]crypto.Signer{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	gen := func(name string, f func() (crypto.Signer, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := f()
			if err != nil {
				panic(err)
			}
			mu.Lock()
			m[name] = k
			mu.Unlock()
		}()
	}
	for _, bits := range []int{2048, 3072, 4096} {
		bits := bits
		gen(fmt.Sprintf("rsa%d", bits), func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, bits) })
	}
	gen("p256", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) })
	gen("p384", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) })
	wg.Wait()
	return m
})

var subscriberKeyNames = []string{"rsa2048", "rsa3072", "rsa4096", "p256", "p384"}

// Test CAs, one per issuing key type, made once.
var (
	testCAsOnce sync.Once
	testCAs     map[string]*Authority
	testCAsErr  error
	testCAsDir  string
)

func testCA(t testing.TB, kind string) *Authority {
	t.Helper()
	testCAsOnce.Do(func() {
		testCAs = map[string]*Authority{}
		testCAsDir, testCAsErr = os.MkdirTemp("", "certdesk-ca-test")
		if testCAsErr != nil {
			return
		}
		for _, k := range []string{KeyRSA2048, KeyP256, KeyP384} {
			a, err := Init(filepath.Join(testCAsDir, k), InitOptions{Config: Config{BaseURL: testBase}, IssuingKeyType: k},
				portal.NewFixedClock(testNow))
			if err != nil {
				testCAsErr = err
				return
			}
			testCAs[k] = a
		}
	})
	if testCAsErr != nil {
		t.Fatal(testCAsErr)
	}
	return testCAs[kind]
}

func TestMain(m *testing.M) {
	flag.Parse()
	// Most parallel subtests wait on openssl processes: run more of them
	// than GOMAXPROCS unless -parallel was given.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", "6")
	}
	code := m.Run()
	if testCAsDir != "" {
		os.RemoveAll(testCAsDir)
	}
	os.Exit(code)
}

// freshCA makes a CA of its own for tests that count signatures or move
// the clock.
func freshCA(t testing.TB, kind string, clock portal.Clock) *Authority {
	t.Helper()
	a, err := Init(t.TempDir(), InitOptions{Config: Config{BaseURL: testBase}, IssuingKeyType: kind}, clock)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// requestFor fills an IssueRequest for a product with sensible data.
func requestFor(p portal.Product, pub crypto.PublicKey) IssueRequest {
	req := IssueRequest{Product: p, Emails: []string{"jan.devries@example.com", "j.devries@example.org"}, PublicKey: pub}
	if p.OrgInSubject {
		req.OrgName, req.OrgIdentifier, req.OrgCountry = "Voorbeeld B.V.", "NTRNL-12345678", "NL"
	}
	if p.PersonalName {
		req.CommonNameFromName, req.CommonName = true, "Jan de Vries"
	}
	return req
}

func mustProduct(t testing.TB, id portal.ProductID) portal.Product {
	t.Helper()
	p, ok := portal.ProductByID(id)
	if !ok {
		t.Fatalf("no product %s", id)
	}
	return p
}

func openssl(t testing.TB) string {
	t.Helper()
	const path = "/usr/bin/openssl"
	if _, err := os.Stat(path); err != nil {
		t.Skip("openssl not installed at /usr/bin/openssl")
	}
	return path
}

func runOpenSSL(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(openssl(t), args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeTemp(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawRSA signs with textbook RSA-PKCS#1 v1.5 from n, e, d, so tests can
// make CSRs for keys crypto/rsa refuses to use (small factors, e = 3).
type rawRSA struct {
	pub *rsa.PublicKey
	d   *big.Int
}

func (k rawRSA) Public() crypto.PublicKey { return k.pub }

var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
}

func (k rawRSA) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	prefix, ok := digestInfoPrefix[opts.HashFunc()]
	if !ok {
		return nil, errors.New("rawRSA: only SHA-256")
	}
	size := (k.pub.N.BitLen() + 7) / 8
	t := append(append([]byte{}, prefix...), digest...)
	em := make([]byte, size)
	em[1] = 1
	for i := 2; i < size-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[size-len(t):], t)
	m := new(big.Int).SetBytes(em)
	s := new(big.Int).Exp(m, k.d, k.pub.N).FillBytes(make([]byte, size))
	return s, nil
}

// rawKeyFromPrimes builds a signer from two primes and an exponent.
func rawKeyFromPrimes(p, q *big.Int, e int) (rawRSA, error) {
	n := new(big.Int).Mul(p, q)
	one := big.NewInt(1)
	pm := new(big.Int).Sub(p, one)
	qm := new(big.Int).Sub(q, one)
	g := new(big.Int).GCD(nil, nil, pm, qm)
	lambda := new(big.Int).Div(new(big.Int).Mul(pm, qm), g)
	d := new(big.Int).ModInverse(big.NewInt(int64(e)), lambda)
	if d == nil {
		return rawRSA{}, errors.New("e not invertible")
	}
	return rawRSA{pub: &rsa.PublicKey{N: n, E: e}, d: d}, nil
}

func csrDER(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "ignored subject"},
		EmailAddresses: []string{"ignored@example.com"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
