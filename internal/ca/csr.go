package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"strings"
	"sync"

	"certdesk/internal/portal"
)

// MaxCSRSize is the largest CSR input accepted (16 KiB).
const MaxCSRSize = 16 << 10

// CSR error keys (portal.Error.Key); every one has Code EInvalid and
// Field "csr". The messages never contain the input.
const (
	KeyCSREmpty        = "csr.empty"
	KeyCSRTooLarge     = "csr.too_large"
	KeyCSRPrivateKey   = "csr.private_key"
	KeyCSRCertificate  = "csr.certificate"
	KeyCSRMultiple     = "csr.multiple"
	KeyCSRParse        = "csr.parse"
	KeyCSRBadSignature = "csr.bad_signature"
	KeyCSRKeyType      = "csr.key_type"
	KeyCSRRSASize      = "csr.rsa_size"
	KeyCSRRSAExponent  = "csr.rsa_exponent"
	KeyCSRWeakKey      = "csr.weak_key"
	KeyCSREcCurve      = "csr.ec_curve"
)

// Messages shown to the user for each CSR error key.
var csrMessages = map[string]string{
	KeyCSREmpty:        "Paste a certificate signing request (CSR).",
	KeyCSRTooLarge:     "The CSR is too large (at most 16 KiB).",
	KeyCSRPrivateKey:   "This is a private key. Never share it; paste the certificate signing request (CSR) instead.",
	KeyCSRCertificate:  "This is a certificate, not a CSR.",
	KeyCSRMultiple:     "Paste exactly one CSR.",
	KeyCSRParse:        "This is not a readable certificate signing request (PEM or DER).",
	KeyCSRBadSignature: "The CSR's signature does not verify; it was damaged or not made with its own key.",
	KeyCSRKeyType:      "Unsupported key type: use RSA (2048, 3072 or 4096 bits) or ECDSA (P-256 or P-384).",
	KeyCSRRSASize:      "Unsupported RSA key size: use 2048, 3072 or 4096 bits.",
	KeyCSRRSAExponent:  "Unsupported RSA public exponent: use 65537.",
	KeyCSRWeakKey:      "This key is known to be weak (its private key can be computed). Generate a new key.",
	KeyCSREcCurve:      "Unsupported elliptic curve: use P-256 or P-384.",
}

func csrError(key string) *portal.Error {
	return portal.FieldError("csr", key, csrMessages[key])
}

// ParseCSR applies certdesk's CSR intake policy and returns the CSR's public
// key. Only the key is used: the CSR's subject and extensions are ignored
// (the certificate's content comes from validated order data, SBR 7.1.4.2).
//
// Accepted: PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST"), DER,
// or bare base64 DER; CRLF and surrounding blanks are tolerated; exactly one
// CSR of at most 16 KiB; a verifying self-signature (proof of possession);
// RSA 2048/3072/4096 with exponent 65537, not weak (Fermat, ROCA, small
// factors), or ECDSA P-256/P-384 (SBR 6.1.5, 6.1.6). Every refusal is a
// *portal.Error with Code EInvalid, Field "csr" and one of the KeyCSR* keys.
func ParseCSR(input []byte) (crypto.PublicKey, error) { return parseCSR(input, true) }

// ParseAcceptedCSR is ParseCSR for a CSR that ParseCSR accepted before
// (the one stored with a recipient: every intake, the order form, the API
// and the KeyGen exchange, went through ParseCSR): the same parsing and key
// policy, without verifying the self-signature again. Proof of possession
// was shown when the CSR was accepted; the issuance pipeline re-reads the
// stored CSR for every certificate (and every plan period), where the
// second verification added ~35 us (RSA) to ~80 us (P-256) per
// certificate and no assurance.
func ParseAcceptedCSR(input []byte) (crypto.PublicKey, error) { return parseCSR(input, false) }

func parseCSR(input []byte, verify bool) (crypto.PublicKey, error) {
	if len(input) > MaxCSRSize {
		return nil, csrError(KeyCSRTooLarge)
	}
	text := bytes.ReplaceAll(input, []byte("\r\n"), []byte("\n"))
	text = bytes.ReplaceAll(text, []byte("\r"), []byte("\n"))
	text = bytes.TrimSpace(text)
	if len(text) == 0 {
		return nil, csrError(KeyCSREmpty)
	}
	// A private key anywhere in the input, even an unparseable one, gets its
	// own message before anything else.
	if bytes.Contains(text, []byte("PRIVATE KEY-----")) {
		return nil, csrError(KeyCSRPrivateKey)
	}
	var der []byte
	if bytes.HasPrefix(text, []byte("-----BEGIN")) || bytes.Contains(text, []byte("\n-----BEGIN")) {
		var csrs [][]byte
		others, certs := 0, 0
		rest := text
		for {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			switch {
			case strings.Contains(blk.Type, "PRIVATE KEY"):
				return nil, csrError(KeyCSRPrivateKey)
			case blk.Type == "CERTIFICATE REQUEST" || blk.Type == "NEW CERTIFICATE REQUEST":
				csrs = append(csrs, blk.Bytes)
			case blk.Type == "CERTIFICATE" || blk.Type == "X509 CERTIFICATE" || blk.Type == "TRUSTED CERTIFICATE":
				certs++
			default:
				others++
			}
		}
		switch {
		case len(csrs) == 0 && certs > 0:
			return nil, csrError(KeyCSRCertificate)
		case len(csrs) == 0:
			return nil, csrError(KeyCSRParse)
		case len(csrs) > 1 || certs > 0 || others > 0:
			return nil, csrError(KeyCSRMultiple)
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			// Text after the CSR that is not a PEM block: a second,
			// damaged block or stray text. Refuse rather than guess.
			if bytes.Contains(rest, []byte("-----BEGIN")) {
				return nil, csrError(KeyCSRMultiple)
			}
			return nil, csrError(KeyCSRParse)
		}
		der = csrs[0]
	} else if len(input) > 0 && input[0] == 0x30 {
		der = input // binary DER: use the bytes as given
	} else if b, ok := decodeBareBase64(text); ok {
		der = b
	} else {
		return nil, csrError(KeyCSRParse)
	}
	return parseCSRDER(der, verify)
}

// decodeBareBase64 accepts base64 DER pasted without PEM armour.
func decodeBareBase64(text []byte) ([]byte, bool) {
	s := strings.Join(strings.Fields(string(text)), "")
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || b[0] != 0x30 {
		return nil, false
	}
	return b, true
}

func parseCSRDER(der []byte, verify bool) (crypto.PublicKey, error) {
	var first asn1.RawValue
	rest, err := asn1.Unmarshal(der, &first)
	if err != nil {
		return nil, csrError(KeyCSRParse)
	}
	if len(bytes.TrimSpace(rest)) == 0 {
		der = der[:len(der)-len(rest)] // a trailing newline after binary DER
		rest = nil
	}
	if len(rest) > 0 {
		if _, err := x509.ParseCertificateRequest(rest); err == nil {
			return nil, csrError(KeyCSRMultiple)
		}
		return nil, csrError(KeyCSRParse)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		if isPrivateKeyDER(der) {
			return nil, csrError(KeyCSRPrivateKey)
		}
		if _, cerr := x509.ParseCertificate(der); cerr == nil {
			return nil, csrError(KeyCSRCertificate)
		}
		return nil, csrError(KeyCSRParse)
	}
	// Key policy first: it gives the more useful message (a CSR with an
	// Ed25519 key says "key type", not "signature").
	if err := checkKeyShape(csr.PublicKey); err != nil {
		return nil, err
	}
	// Proof of possession: the CSR is signed by its own key.
	if verify {
		if err := csr.CheckSignature(); err != nil {
			return nil, csrError(KeyCSRBadSignature)
		}
	}
	if err := checkWeakKey(csr.PublicKey); err != nil {
		return nil, err
	}
	return csr.PublicKey, nil
}

func isPrivateKeyDER(der []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParseECPrivateKey(der); err == nil {
		return true
	}
	return false
}

// CheckPublicKey applies the key part of the intake policy (type, size,
// exponent, curve, weak-key tests) to a key from elsewhere. Issue calls it
// on every key.
func CheckPublicKey(pub crypto.PublicKey) error {
	if err := checkKeyShape(pub); err != nil {
		return err
	}
	return checkWeakKey(pub)
}

// checkKeyShape: SBR 6.1.5 key sizes and 6.1.6 parameters, narrowed to what
// certdesk issues: RSA 2048/3072/4096 with e = 65537, ECDSA P-256/P-384.
func checkKeyShape(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048, 3072, 4096:
		default:
			return csrError(KeyCSRRSASize)
		}
		if k.E != 65537 {
			return csrError(KeyCSRRSAExponent)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384():
			// crypto/x509 only parses points on the curve; both curves
			// have cofactor 1, so that is full public key validation.
			return nil
		}
		return csrError(KeyCSREcCurve)
	case ed25519.PublicKey:
		return csrError(KeyCSRKeyType)
	}
	return csrError(KeyCSRKeyType)
}

// checkWeakKey refuses RSA moduli that are even or have small factors, that
// fall to Fermat's method, or that carry the ROCA fingerprint.
func checkWeakKey(pub crypto.PublicKey) error {
	k, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil
	}
	weak := func(why string) error {
		e := csrError(KeyCSRWeakKey)
		e.Data = map[string]any{"weakness": why}
		return e
	}
	id := rsaKeyID(k)
	if strongKeys.has(id) {
		return nil
	}
	if hasSmallFactor(k.N) {
		return weak("small_factor")
	}
	if _, ok := fermatFactor(k.N); ok {
		return weak("fermat")
	}
	if rocaFingerprint(k.N) {
		return weak("roca")
	}
	strongKeys.add(id)
	return nil
}

// strongKeys remembers RSA keys that passed checkWeakKey, by a hash of
// modulus and exponent. The tests are deterministic functions of the key,
// so a key checked once need not be tested again: a CSR is parsed when
// the order is placed, again when issuance loads it, and Issue checks its
// key once more (about 0.1 ms each for RSA-2048 here). Only passing keys
// are remembered; the set is emptied when it reaches strongKeysMax.
var strongKeys = &keySet{m: map[[32]byte]struct{}{}}

const strongKeysMax = 8192

type keySet struct {
	mu sync.Mutex
	m  map[[32]byte]struct{}
}

func (s *keySet) has(id [32]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	return ok
}

func (s *keySet) add(id [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= strongKeysMax {
		clear(s.m)
	}
	s.m[id] = struct{}{}
}

func rsaKeyID(k *rsa.PublicKey) [32]byte {
	h := sha256.New()
	h.Write(k.N.Bytes())
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], uint64(k.E))
	h.Write(e[:])
	var id [32]byte
	h.Sum(id[:0])
	return id
}
