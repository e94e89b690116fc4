package keygen

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
)

// The page's path: WebCrypto makes the key, signs the request info that Go
// builds and verifies the signature; Go assembles the DER CSR and the page
// adds the PEM armour. Here the signature comes from crypto/rsa, as
// WebCrypto's RSASSA-PKCS1-v1_5 would.
func TestCSRSignedOutsideGo(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub, err := ParseRSAPublicSPKI(spki)
	if err != nil || pub.N.Cmp(key.N) != 0 || pub.E != 65537 {
		t.Fatalf("spki: %v", err)
	}
	info, err := CSRInfo(pub, "jane@example.com")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(info)
	sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	csrDER, err := AssembleCSR(pub, info, sig)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil || csr.SignatureAlgorithm != x509.SHA256WithRSA || csr.Subject.CommonName != "jane@example.com" {
		t.Fatalf("csr: %v %v %q", err, csr.SignatureAlgorithm, csr.Subject.CommonName)
	}
	// the same bytes as the all-Go path would make for this key
	goPEM, err := CSR(key, "jane@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(goPEM); block == nil || !bytes.Equal(block.Bytes, csrDER) { // PKCS#1 v1.5 signatures are deterministic
		t.Fatal("the split path and the Go path differ")
	}
	// The common name is a UTF8String (tag 12), as before the subject was
	// written without pkix.RDNSequence.
	if !bytes.Contains(info, append([]byte{0x0c, byte(len("jane@example.com"))}, "jane@example.com"...)) {
		t.Error("the common name is not a UTF8String")
	}

	// AssembleCSR does not verify (the page has WebCrypto do it, the CA
	// checks again): a tampered signature gives a CSR the CA refuses.
	bad := append([]byte(nil), sig...)
	bad[10] ^= 1
	badDER, err := AssembleCSR(pub, info, bad)
	if err != nil {
		t.Fatal(err)
	}
	if badCSR, err := x509.ParseCertificateRequest(badDER); err != nil || badCSR.CheckSignature() == nil {
		t.Fatalf("a tampered signature verifies: %v", err)
	}
	if _, err := AssembleCSR(pub, info, sig[:100]); !errors.Is(err, ErrNotRSA2048) {
		t.Fatalf("short signature: %v", err)
	}

	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	spkiSmall, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spkiEC, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	for name, der := range map[string][]byte{"rsa1024": spkiSmall, "ecdsa": spkiEC, "garbage": []byte("nope"), "trailing": append(spki, 0)} {
		if _, err := ParseRSAPublicSPKI(der); !errors.Is(err, ErrNotRSA2048) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
