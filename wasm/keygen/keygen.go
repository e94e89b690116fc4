// Package keygen makes the recipient's key pair, the certificate signing
// request and the PKCS#12 file inside the browser (compiled to WebAssembly by
// certdesk/wasm), so the private key never leaves the page.
//
// It is a plain Go package so it is tested natively. To keep the WebAssembly
// module small it avoids fmt, encoding/json, encoding/pem, pkix.Name and the
// crypto/x509 parsers and builders: the CSR is written with encoding/asn1
// (which go-pkcs12 links anyway), the certificate is only read as far as its
// SubjectPublicKeyInfo, and the page does the PEM armour in JavaScript (the
// module takes and returns DER). The browser's WebCrypto makes the key and
// signs the CSR; what the module links is what the page calls (wasm/main.go),
// so CSR, the all-Go reference the tests compare the page's path with, adds
// nothing to it. go-pkcs12 is the heavy dependency: it imports crypto/x509 (whose
// init links the ECDSA, Ed25519 and P-256 tables) and calls
// x509.MarshalPKCS8PrivateKey; of the x509.Certificate it reads only Raw.
// See docs/keygen-notes.md for the sizes.
package keygen

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"unicode/utf8"

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
	// ErrSignature: a CSR signature does not verify with the public key.
	ErrNotRSA2048       = errors.New("keygen: key is not RSA-2048 with exponent 65537")
	ErrEmail            = errors.New("keygen: email address is empty or not valid UTF-8")
	ErrPasswordEmpty    = errors.New("keygen: password is empty")
	ErrPasswordTooShort = errors.New("keygen: password is shorter than MinPasswordLength")
	ErrPasswordChars    = errors.New("keygen: password has a character outside the Basic Multilingual Plane")
	ErrMode             = errors.New("keygen: unknown PKCS#12 mode")
	ErrCertificate      = errors.New("keygen: certificate is not a DER X.509 certificate")
	ErrKeyMismatch      = errors.New("keygen: certificate does not belong to this key")
	ErrPKCS8            = errors.New("keygen: not a PKCS#8 RSA private key")
	ErrNoKey            = errors.New("keygen: no private key (never made, or already dropped)")
)

var (
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA256WithRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidCommonName    = asn1.ObjectIdentifier{2, 5, 4, 3}
)

func checkRSAPublic(pub *rsa.PublicKey) error {
	if pub == nil || pub.N == nil || pub.N.Sign() <= 0 || pub.N.BitLen() != KeyBits || pub.E != 65537 {
		return ErrNotRSA2048
	}
	return nil
}

// The ASN.1 structures below are written with encoding/asn1, which go-pkcs12
// links anyway; cryptobyte would add a second ASN.1 library to the module.

// pkcs8 is PrivateKeyInfo (RFC 5208 5).
type pkcs8 struct {
	Version    int
	Algorithm  pkix.AlgorithmIdentifier
	PrivateKey []byte
	Attributes asn1.RawValue `asn1:"optional,tag:0"`
}

// pkcs1PrivateKey is RSAPrivateKey (RFC 8017 A.1.2), two-prime only.
type pkcs1PrivateKey struct {
	Version int
	N       *big.Int
	E       int
	D       *big.Int
	P       *big.Int
	Q       *big.Int
	// Dp, Dq and Qinv are recomputed by Precompute.
	Dp   *big.Int
	Dq   *big.Int
	Qinv *big.Int
}

// pkcs1PublicKey is RSAPublicKey (RFC 8017 A.1.1).
type pkcs1PublicKey struct {
	N *big.Int
	E int
}

type subjectPublicKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

// The subject is written with these types and not pkix.RDNSequence: that
// one's String method (reachable once the value is passed to asn1.Marshal)
// links the attribute-name table and encoding/hex, 3 kB of module for
// nothing. A slice type whose name ends in SET is a SET OF to encoding/asn1.
type attributeTypeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value string `asn1:"utf8"`
}

type relativeDistinguishedNameSET []attributeTypeAndValue

// certificationRequestInfo is RFC 2986 4.1.
type certificationRequestInfo struct {
	Version    int
	Subject    []relativeDistinguishedNameSET
	PublicKey  subjectPublicKeyInfo
	Attributes []asn1.RawValue `asn1:"tag:0"`
}

type signed struct {
	Content            asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
}

// certificate is the outline of RFC 5280 4.1, read only as far as the
// subject public key.
type certificate struct {
	TBS                tbsCertificate
	SignatureAlgorithm asn1.RawValue
	Signature          asn1.BitString
}

type tbsCertificate struct {
	Version         int `asn1:"optional,explicit,default:0,tag:0"`
	SerialNumber    asn1.RawValue
	Signature       asn1.RawValue
	Issuer          asn1.RawValue
	Validity        asn1.RawValue
	Subject         asn1.RawValue
	PublicKey       subjectPublicKeyInfo
	IssuerUniqueID  asn1.BitString `asn1:"optional,tag:1"`
	SubjectUniqueID asn1.BitString `asn1:"optional,tag:2"`
	Extensions      asn1.RawValue  `asn1:"optional,explicit,tag:3"`
}

// unmarshalAll is asn1.Unmarshal that also refuses trailing bytes.
func unmarshalAll(der []byte, out any) bool {
	rest, err := asn1.Unmarshal(der, out)
	return err == nil && len(rest) == 0
}

// ImportPKCS8 reads an unencrypted PKCS#8 RSA private key, as made by
// WebCrypto (generateKey RSASSA-PKCS1-v1_5, 2048 bits, e=65537, extractable,
// then exportKey("pkcs8")). Only RSA-2048 with e=65537 is accepted. The key is
// validated (p*q = n, d*e = 1 mod lambda) and precomputed for signing.
//
// It does not use x509.ParsePKCS8PrivateKey, so the WebAssembly module does
// not link the EC, Ed25519 and ML-KEM key parsers.
func ImportPKCS8(der []byte) (*rsa.PrivateKey, error) {
	var info pkcs8
	if !unmarshalAll(der, &info) || info.Version != 0 || !info.Algorithm.Algorithm.Equal(oidRSAEncryption) {
		return nil, ErrPKCS8
	}
	// Parameters must be absent or NULL (RFC 8017 A.1).
	if p := info.Algorithm.Parameters; len(p.FullBytes) != 0 && !bytes.Equal(p.FullBytes, asn1.NullBytes) {
		return nil, ErrPKCS8
	}
	var k pkcs1PrivateKey
	if !unmarshalAll(info.PrivateKey, &k) || k.Version != 0 {
		return nil, ErrPKCS8
	}
	defer clear(info.PrivateKey)
	for _, x := range []*big.Int{k.D, k.P, k.Q} {
		if x.Sign() <= 0 {
			return nil, ErrPKCS8
		}
	}
	key := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: k.N, E: k.E},
		D:         k.D,
		Primes:    []*big.Int{k.P, k.Q},
	}
	for _, x := range []*big.Int{k.Dp, k.Dq, k.Qinv} {
		clear(x.Bits())
	}
	if err := checkRSAPublic(&key.PublicKey); err != nil {
		return nil, err
	}
	// Precompute first: it runs the full check (p*q = n, d*e = 1 mod
	// p-1 and q-1, and the CRT values), and Validate then only confirms
	// the precomputed key, or re-runs the check to report why it failed.
	// The other order does the expensive work twice.
	key.Precompute()
	if err := key.Validate(); err != nil {
		return nil, ErrPKCS8
	}
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

// rsaAlgorithm is an AlgorithmIdentifier with NULL parameters, as RFC 4055
// requires for rsaEncryption and sha256WithRSAEncryption.
func rsaAlgorithm(oid asn1.ObjectIdentifier) pkix.AlgorithmIdentifier {
	return pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue}
}

// CSR returns a PEM "CERTIFICATE REQUEST" (PKCS#10, RFC 2986) for key, signed
// with SHA256WithRSA (PKCS#1 v1.5), which is the proof of possession the CA
// checks. The page does not call it (WebCrypto signs CSRInfo there); it is
// the all-Go reference the tests compare the page's path with. The subject is CN=email; the CA ignores the subject and takes the
// address from the order (SBR 7.1.4.2.2 / 3.2.2), so an address longer than
// the X.520 CommonName bound of 64 characters gives an empty subject instead.
func CSR(key crypto.Signer, email string) ([]byte, error) {
	pub, err := rsaPublic(key)
	if err != nil {
		return nil, err
	}
	info, err := CSRInfo(pub, email)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(info)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return nil, err
	}
	der, err := AssembleCSR(pub, info, sig)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// CSRInfo returns the DER CertificationRequestInfo (RFC 2986 4.1) for pub
// and email: the bytes that are signed with SHA256WithRSA to make the CSR.
// The page has the browser's WebCrypto sign them with the key it made, so
// the slow private-key operation runs natively and not in WebAssembly.
func CSRInfo(pub *rsa.PublicKey, email string) ([]byte, error) {
	if err := checkRSAPublic(pub); err != nil {
		return nil, err
	}
	if email == "" || !utf8.ValidString(email) {
		return nil, ErrEmail
	}
	pubDER, err := asn1.Marshal(pkcs1PublicKey{N: pub.N, E: pub.E})
	if err != nil {
		return nil, err
	}
	info := certificationRequestInfo{
		Version: 0,
		Subject: []relativeDistinguishedNameSET{},
		PublicKey: subjectPublicKeyInfo{
			Algorithm: rsaAlgorithm(oidRSAEncryption),
			PublicKey: asn1.BitString{Bytes: pubDER, BitLength: 8 * len(pubDER)},
		},
		Attributes: []asn1.RawValue{},
	}
	if utf8.RuneCountInString(email) <= 64 {
		info.Subject = []relativeDistinguishedNameSET{{{Type: oidCommonName, Value: email}}}
	}
	return asn1.Marshal(info)
}

// AssembleCSR returns the DER CertificationRequest (RFC 2986 4.2) made of
// info and sig, the SHA256WithRSA (PKCS#1 v1.5) signature of info by the
// key of pub. It does not verify sig: the page has WebCrypto verify it
// before anything is sent (crypto/rsa's verifier would add 2.6 kB to the
// module), and the CA checks it again as the proof of possession.
func AssembleCSR(pub *rsa.PublicKey, info, sig []byte) ([]byte, error) {
	if err := checkRSAPublic(pub); err != nil {
		return nil, err
	}
	if len(sig) != KeyBits/8 {
		return nil, ErrNotRSA2048
	}
	return asn1.Marshal(signed{
		Content:            asn1.RawValue{FullBytes: info},
		SignatureAlgorithm: rsaAlgorithm(oidSHA256WithRSA),
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
}

// ParseRSAPublicSPKI parses a DER SubjectPublicKeyInfo (WebCrypto's
// exportKey "spki") holding an RSA-2048 key with exponent 65537.
func ParseRSAPublicSPKI(der []byte) (*rsa.PublicKey, error) {
	var spki subjectPublicKeyInfo
	if !unmarshalAll(der, &spki) || !spki.Algorithm.Algorithm.Equal(oidRSAEncryption) {
		return nil, ErrNotRSA2048
	}
	var pk pkcs1PublicKey
	if !unmarshalAll(spki.PublicKey.RightAlign(), &pk) {
		return nil, ErrNotRSA2048
	}
	pub := &rsa.PublicKey{N: pk.N, E: pk.E}
	if err := checkRSAPublic(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// parseCertificate reads the outline of one DER certificate. (PEM is
// decoded by the page: encoding/pem and encoding/base64 would add 14 kB to
// the module.)
func parseCertificate(der []byte) (*certificate, error) {
	var c certificate
	if !unmarshalAll(der, &c) {
		return nil, ErrCertificate
	}
	return &c, nil
}

// rsaPublicKey returns the certificate's RSA public key, or ErrKeyMismatch if
// it holds another kind of key.
func (c *certificate) rsaPublicKey() (*rsa.PublicKey, error) {
	spki := c.TBS.PublicKey
	if !spki.Algorithm.Algorithm.Equal(oidRSAEncryption) {
		return nil, ErrKeyMismatch
	}
	var k pkcs1PublicKey
	if spki.PublicKey.BitLength%8 != 0 || !unmarshalAll(spki.PublicKey.Bytes, &k) {
		return nil, ErrCertificate
	}
	return &rsa.PublicKey{N: k.N, E: k.E}, nil
}

// CheckPassword reports whether password is acceptable for PKCS12. A
// PKCS#12 password is a BMPString (RFC 7292 B.1, UCS-2), so characters
// outside Unicode's Basic Multilingual Plane (emoji) are refused with
// ErrPasswordChars, for the page to say so; go-pkcs12 would refuse them
// with an error of its own, which the page could only call "failed".
func CheckPassword(password string) error {
	if password == "" {
		return ErrPasswordEmpty
	}
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return ErrPasswordTooShort
	}
	for _, r := range password {
		if r > 0xFFFF {
			return ErrPasswordChars
		}
	}
	return nil
}

// PKCS12 packages key, the leaf certificate and the CA chain (each DER, leaf
// first, then issuers) into a password-protected PKCS#12 file.
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
	cert, err := parseCertificate(leaf)
	if err != nil {
		return nil, err
	}
	certPub, err := cert.rsaPublicKey()
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
		if _, err := parseCertificate(c); err != nil {
			return nil, err
		}
		caCerts = append(caCerts, &x509.Certificate{Raw: c})
	}
	return enc.Encode(key, &x509.Certificate{Raw: leaf}, caCerts, password)
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
