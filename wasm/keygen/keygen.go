// Package keygen makes the recipient's key pair, the certificate signing
// request and the PKCS#12 file inside the browser (compiled to WebAssembly by
// certdesk/wasm), so the private key never leaves the page.
//
// It is a plain Go package so it is tested natively. To keep the WebAssembly
// module small it avoids fmt, encoding/json and the crypto/x509 parsers and
// builders: the CSR is written with cryptobyte and the certificate is only
// read as far as its SubjectPublicKeyInfo. go-pkcs12 is the only heavy
// dependency (it needs crypto/x509 for MarshalPKCS8PrivateKey and the
// x509.Certificate type, of which only Raw is read when encoding).
package keygen

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// KeyBits is the only RSA modulus size made or accepted.
const KeyBits = 2048

// MinPasswordLength is the shortest PKCS#12 password PKCS12 accepts.
const MinPasswordLength = 10

// Modes accepted by PKCS12.
const (
	// ModeModern is go-pkcs12 Modern2023: AES-256-CBC with PBKDF2
	// (HMAC-SHA-256) for key and certificates, SHA-256 MAC.
	ModeModern = "modern"
	// ModeCompatible is go-pkcs12 LegacyDES: 3DES (pbeWithSHAAnd3-KeyTripleDES-CBC)
	// for key and certificates, SHA-1 MAC; for older Windows and macOS
	// versions that cannot read the modern format.
	ModeCompatible = "compatible"
)

// Errors returned to the page. Their text is never shown to a user as is:
// the page maps them to translated messages.
var (
	ErrNotRSA2048       = errors.New("keygen: key is not RSA-2048 with exponent 65537")
	ErrEmail            = errors.New("keygen: email address is empty or not valid UTF-8")
	ErrPasswordEmpty    = errors.New("keygen: password is empty")
	ErrPasswordTooShort = errors.New("keygen: password is shorter than MinPasswordLength")
	ErrMode             = errors.New("keygen: unknown PKCS#12 mode")
	ErrCertificate      = errors.New("keygen: certificate is not a DER or PEM X.509 certificate")
	ErrKeyMismatch      = errors.New("keygen: certificate does not belong to this key")
	ErrPKCS8            = errors.New("keygen: not a PKCS#8 RSA private key")
	ErrNoKey            = errors.New("keygen: no private key (never made, or already dropped)")
)

var (
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidCommonName    = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// GenerateRSA2048 makes a fresh RSA-2048 key (exponent 65537) from crypto/rand
// (in the browser: crypto.getRandomValues).
func GenerateRSA2048() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, KeyBits)
}

func checkRSAPublic(pub *rsa.PublicKey) error {
	if pub == nil || pub.N == nil || pub.N.BitLen() != KeyBits || pub.E != 65537 {
		return ErrNotRSA2048
	}
	return nil
}

// ImportPKCS8 reads an unencrypted PKCS#8 RSA private key, as made by
// WebCrypto (generateKey RSASSA-PKCS1-v1_5, 2048 bits, e=65537, extractable,
// then exportKey("pkcs8")). Only RSA-2048 with e=65537 is accepted. The key is
// validated (p*q = n, d*e = 1 mod lambda) and precomputed for signing.
//
// It parses the two layers with cryptobyte instead of x509.ParsePKCS8PrivateKey
// so the WebAssembly module does not link the EC and Ed25519 key parsers.
func ImportPKCS8(der []byte) (*rsa.PrivateKey, error) {
	// PrivateKeyInfo ::= SEQUENCE { version INTEGER, privateKeyAlgorithm
	//   AlgorithmIdentifier, privateKey OCTET STRING, attributes [0] OPTIONAL }
	in := cryptobyte.String(der)
	var pki, alg, pk cryptobyte.String
	var version int
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&pki, cbasn1.SEQUENCE) || !in.Empty() ||
		!pki.ReadASN1Integer(&version) || version != 0 ||
		!pki.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidRSAEncryption) ||
		!pki.ReadASN1(&pk, cbasn1.OCTET_STRING) {
		return nil, ErrPKCS8
	}
	// Parameters must be absent or NULL.
	if !alg.Empty() && (!alg.SkipASN1(cbasn1.NULL) || !alg.Empty()) {
		return nil, ErrPKCS8
	}
	// RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dP, dQ, qInv }
	var seq cryptobyte.String
	var e int
	n, d, p, q := new(big.Int), new(big.Int), new(big.Int), new(big.Int)
	skip := new(big.Int)
	if !pk.ReadASN1(&seq, cbasn1.SEQUENCE) || !pk.Empty() ||
		!seq.ReadASN1Integer(&version) || version != 0 ||
		!seq.ReadASN1Integer(n) || !seq.ReadASN1Integer(&e) ||
		!seq.ReadASN1Integer(d) || !seq.ReadASN1Integer(p) || !seq.ReadASN1Integer(q) ||
		// dP, dQ, qInv are recomputed by Precompute.
		!seq.ReadASN1Integer(skip) || !seq.ReadASN1Integer(skip) || !seq.ReadASN1Integer(skip) ||
		!seq.Empty() {
		return nil, ErrPKCS8
	}
	skip.SetInt64(0)
	key := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: n, E: e},
		D:         d,
		Primes:    []*big.Int{p, q},
	}
	if err := checkRSAPublic(&key.PublicKey); err != nil {
		return nil, err
	}
	if err := key.Validate(); err != nil {
		return nil, ErrPKCS8
	}
	key.Precompute()
	return key, nil
}

// rsaPublic returns the RSA-2048 public key of signer.
func rsaPublic(signer crypto.Signer) (*rsa.PublicKey, error) {
	if signer == nil {
		return nil, ErrNotRSA2048
	}
	pub, ok := signer.Public().(*rsa.PublicKey)
	if !ok {
		return nil, ErrNotRSA2048
	}
	return pub, checkRSAPublic(pub)
}

// addAlgorithm adds AlgorithmIdentifier { oid, NULL }.
func addAlgorithm(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1NULL()
	})
}

// addSPKI adds the SubjectPublicKeyInfo of an RSA public key (RFC 8017 A.1.1,
// RFC 4055: rsaEncryption with NULL parameters).
func addSPKI(b *cryptobyte.Builder, pub *rsa.PublicKey) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		addAlgorithm(b, oidRSAEncryption)
		b.AddASN1BitString(rsaPublicKeyDER(pub))
	})
}

func rsaPublicKeyDER(pub *rsa.PublicKey) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1BigInt(pub.N)
		b.AddASN1Int64(int64(pub.E))
	})
	return b.BytesOrPanic()
}

// CSR returns a PEM "CERTIFICATE REQUEST" (PKCS#10, RFC 2986) for key, signed
// with SHA256WithRSA (PKCS#1 v1.5), which is the proof of possession the CA
// checks. The subject is CN=email; the CA ignores the subject and takes the
// address from the order (SBR 7.1.4.2.2 / 3.2.2), so an address longer than
// the X.520 CommonName bound of 64 characters gives an empty subject instead.
func CSR(key crypto.Signer, email string) ([]byte, error) {
	pub, err := rsaPublic(key)
	if err != nil {
		return nil, err
	}
	if email == "" || !utf8.ValidString(email) {
		return nil, ErrEmail
	}
	var info cryptobyte.Builder
	info.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)                                        // version v1
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // Name
			if utf8.RuneCountInString(email) > 64 {
				return
			}
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidCommonName)
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) {
						b.AddBytes([]byte(email))
					})
				})
			})
		})
		addSPKI(b, pub)
		// attributes [0] IMPLICIT SET OF Attribute: empty.
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(*cryptobyte.Builder) {})
	})
	infoDER, err := info.Bytes()
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(infoDER)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	// Check the signature before handing it out, as crypto/x509 does: a
	// fault during signing must not leak a bad signature.
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return nil, err
	}
	var csr cryptobyte.Builder
	csr.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(infoDER)
		addAlgorithm(b, oidSHA256WithRSA)
		b.AddASN1BitString(sig)
	})
	der, err := csr.Bytes()
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// certDER accepts one certificate as DER or PEM and returns its DER after a
// structural check (an outer SEQUENCE holding tbsCertificate, algorithm and
// signature and nothing after it).
func certDER(b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] != 0x30 {
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, ErrCertificate
		}
		b = block.Bytes
	}
	in := cryptobyte.String(b)
	var cert, tbs cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !in.Empty() ||
		!cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!cert.SkipASN1(cbasn1.SEQUENCE) || !cert.SkipASN1(cbasn1.BIT_STRING) || !cert.Empty() {
		return nil, ErrCertificate
	}
	return b, nil
}

// certRSAPublicKey reads the RSA public key from a DER certificate without the
// crypto/x509 parser.
func certRSAPublicKey(der []byte) (*rsa.PublicKey, error) {
	in := cryptobyte.String(der)
	var cert, tbs, spki, alg cryptobyte.String
	var bits asn1.BitString
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) ||
		!cert.ReadASN1(&tbs, cbasn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.SkipASN1(cbasn1.INTEGER) || // serialNumber
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // issuer
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // subject
		!tbs.ReadASN1(&spki, cbasn1.SEQUENCE) ||
		!spki.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&oid) ||
		!spki.ReadASN1BitString(&bits) || bits.BitLength%8 != 0 {
		return nil, ErrCertificate
	}
	if !oid.Equal(oidRSAEncryption) {
		return nil, ErrKeyMismatch
	}
	rsaKey := cryptobyte.String(bits.Bytes)
	var seq cryptobyte.String
	n := new(big.Int)
	var e int
	if !rsaKey.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(n) || !seq.ReadASN1Integer(&e) {
		return nil, ErrCertificate
	}
	return &rsa.PublicKey{N: n, E: e}, nil
}

// CheckPassword reports whether password is acceptable for PKCS12.
func CheckPassword(password string) error {
	if password == "" {
		return ErrPasswordEmpty
	}
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return ErrPasswordTooShort
	}
	return nil
}

// PKCS12 packages key, the leaf certificate and the CA chain (each DER or PEM,
// leaf first, then issuers) into a password-protected PKCS#12 file.
// mode is ModeModern (go-pkcs12 Modern2023) or ModeCompatible (LegacyDES).
// It refuses a password shorter than MinPasswordLength and a leaf whose
// public key is not key's.
func PKCS12(key *rsa.PrivateKey, leaf []byte, chain [][]byte, password, mode string) ([]byte, error) {
	if key == nil || key.D == nil || len(key.Primes) != 2 {
		return nil, ErrNoKey
	}
	if err := checkRSAPublic(&key.PublicKey); err != nil {
		return nil, err
	}
	if err := CheckPassword(password); err != nil {
		return nil, err
	}
	var enc *pkcs12.Encoder
	switch mode {
	case ModeModern:
		enc = pkcs12.Modern2023
	case ModeCompatible:
		enc = pkcs12.LegacyDES
	default:
		return nil, ErrMode
	}
	leafDER, err := certDER(leaf)
	if err != nil {
		return nil, err
	}
	certPub, err := certRSAPublicKey(leafDER)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(certPub) {
		return nil, ErrKeyMismatch
	}
	// go-pkcs12's Encode reads only Certificate.Raw, so the certificates are
	// not run through x509.ParseCertificate (which would link the parser).
	caCerts := make([]*x509.Certificate, 0, len(chain))
	for _, c := range chain {
		der, err := certDER(c)
		if err != nil {
			return nil, err
		}
		caCerts = append(caCerts, &x509.Certificate{Raw: der})
	}
	return enc.Encode(key, &x509.Certificate{Raw: leafDER}, caCerts, password)
}

// Zero overwrites the private parts of key so they do not linger in memory
// until the garbage collector reuses it. The key is unusable afterwards.
func Zero(key *rsa.PrivateKey) {
	if key == nil {
		return
	}
	zeroInt := func(x *big.Int) {
		if x == nil {
			return
		}
		w := x.Bits()
		clear(w)
		x.SetInt64(0)
	}
	zeroInt(key.D)
	for _, p := range key.Primes {
		zeroInt(p)
	}
	zeroInt(key.Precomputed.Dp)
	zeroInt(key.Precomputed.Dq)
	zeroInt(key.Precomputed.Qinv)
	key.D = nil
	key.Primes = nil
	key.Precomputed = rsa.PrecomputedValues{}
}
