package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"certdesk/internal/portal"
)

// File names inside a CA directory.
const (
	RootCertFile    = "root.crt"
	RootKeyFile     = "root.key"
	IssuingCertFile = "issuing.crt"
	IssuingKeyFile  = "issuing.key"
)

// Issuing CA key types accepted by InitOptions.IssuingKeyType.
const (
	KeyRSA2048 = "rsa2048"
	KeyP256    = "p256"
	KeyP384    = "p384"
)

var oidAnyPolicy = mustOID(2, 5, 29, 32, 0)

func mustOID(v ...uint64) x509.OID {
	o, err := x509.OIDFromInts(v)
	if err != nil {
		panic(err)
	}
	return o
}

// Lifetimes of the CA certificates made by Init.
const (
	RootValidity    = 20 * 365 * 24 * time.Hour
	IssuingValidity = 8 * 365 * 24 * time.Hour
)

// Config is what the CA needs to know besides its keys: the HTTP base URL
// under which the web layer serves the CRLs, the OCSP responder and the CA
// certificates.
//
//	<base>/crl/<issuer-id>.crl   CRL of the CA whose IssuerID is issuer-id (DER)
//	<base>/ocsp                  OCSP responder (GET <base>/ocsp/<base64>, POST)
//	<base>/ca/issuing.crt        issuing CA certificate (DER, application/pkix-cert)
//	<base>/ca/root.crt           root CA certificate (DER)
//
// SBR 7.1.2.3 (b), (c): for strict and multipurpose certificates every CRL
// and AIA URI must use the http scheme, so BaseURL must be http://.
type Config struct {
	BaseURL string
	// AllowInternalNames is for development only: a base URL on an internal
	// name (localhost, *.test, an IP) makes zlint warn
	// w_smime_aia_contains_internal_names on every certificate, which
	// otherwise refuses issuance. Never set it on a publicly trusted CA.
	AllowInternalNames bool
}

// InitOptions are the settings for a new CA hierarchy.
type InitOptions struct {
	Config
	// IssuingKeyType is "rsa2048" (default), "p256" or "p384".
	IssuingKeyType string
	// Organization and Country go into both CA subjects (SBR 7.1.4.3.1:
	// commonName, organizationName and countryName SHALL be present).
	// Defaults: "certdesk", "NL".
	Organization string
	Country      string
	// Common names; defaults are derived from Organization.
	RootCommonName    string
	IssuingCommonName string
}

// Authority is a loaded CA: an optional root and the issuing CA that signs
// subscriber certificates, CRLs and OCSP responses. Its methods are safe for
// concurrent use.
type Authority struct {
	cfg     Config
	base    string
	clock   portal.Clock
	root    *x509.Certificate // nil when an imported issuing CA came without its root
	rootKey crypto.Signer     // nil unless the root key is present in the directory
	issuer  *x509.Certificate
	signer  *countingSigner
	chain   []*x509.Certificate // issuer's chain above it, up to the root when known
	ocsp    ocspCache           // signed OCSP responses reused for OCSPReuse
}

// countingSigner counts real signatures so tests can prove that a refused
// certificate was never signed.
type countingSigner struct {
	crypto.Signer
	n atomic.Int64
}

func (c *countingSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	c.n.Add(1)
	return c.Signer.Sign(r, digest, opts)
}

func (o *InitOptions) defaults() {
	if o.IssuingKeyType == "" {
		o.IssuingKeyType = KeyRSA2048
	}
	if o.Organization == "" {
		o.Organization = "certdesk"
	}
	if o.Country == "" {
		o.Country = "NL"
	}
	if o.RootCommonName == "" {
		o.RootCommonName = o.Organization + " Root CA"
	}
	if o.IssuingCommonName == "" {
		o.IssuingCommonName = o.Organization + " S/MIME Issuing CA " + strings.ToUpper(o.IssuingKeyType)
	}
}

func normalizeBase(cfg Config) (string, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("ca: base URL %q is not an absolute URL", cfg.BaseURL)
	}
	// SBR 7.1.2.3 (b), (c): strict and multipurpose allow only the http scheme.
	if u.Scheme != "http" {
		return "", fmt.Errorf("ca: base URL must use http:// (SBR 7.1.2.3 b, c), got %q", u.Scheme)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("ca: base URL must not have a query or fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Init creates a new CA hierarchy in dir: a P-384 root CA and an S/MIME
// issuing CA of opts.IssuingKeyType, as PEM files (keys mode 0600). It
// refuses to overwrite existing material.
//
// The root is ECDSA P-384: SBR 6.1.5 allows it, it is stronger than RSA-3072
// (about 192 against 128 bits of security), its key is made in milliseconds
// (RSA-3072 takes seconds, and tests make many hierarchies), and
// SBR 7.1.3.2.2 pins its signature to ECDSA with SHA-384, so there is no
// hash choice to get wrong.
func Init(dir string, opts InitOptions, clock portal.Clock) (*Authority, error) {
	if err := ValidateProfiles(); err != nil {
		return nil, err
	}
	opts.defaults()
	base, err := normalizeBase(opts.Config)
	if err != nil {
		return nil, err
	}
	if len(opts.Country) != 2 || strings.ToUpper(opts.Country) != opts.Country {
		return nil, fmt.Errorf("ca: country %q is not an ISO 3166-1 alpha-2 code", opts.Country)
	}
	for _, f := range []string{RootCertFile, RootKeyFile, IssuingCertFile, IssuingKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return nil, fmt.Errorf("ca: %s already exists; refusing to overwrite CA material", f)
		}
	}
	issuingKey, err := generateKey(opts.IssuingKeyType)
	if err != nil {
		return nil, err
	}
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := clock.Now().UTC().Truncate(time.Second)

	rootTmpl := &x509.Certificate{
		SerialNumber: NewSerial(),
		Subject: pkix.Name{
			CommonName:   opts.RootCommonName,
			Organization: []string{opts.Organization},
			Country:      []string{opts.Country},
		},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(RootValidity),
		// SBR 7.1.2.1: basicConstraints critical, cA true, no pathLen;
		// keyUsage critical with keyCertSign and cRLSign; no EKU, no policies.
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SignatureAlgorithm:    x509.ECDSAWithSHA384,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: creating root: %w", err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}
	rootID := IssuerIDOf(root)

	issTmpl := &x509.Certificate{
		SerialNumber: NewSerial(),
		Subject: pkix.Name{
			CommonName:   opts.IssuingCommonName,
			Organization: []string{opts.Organization},
			Country:      []string{opts.Country},
		},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(IssuingValidity),
		// SBR 7.1.2.2 (d): basicConstraints critical, cA true; pathLen 0
		// because this CA issues only end-entity certificates.
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		// SBR 7.1.2.2 (e): keyCertSign, cRLSign, and digitalSignature because
		// this CA signs its own OCSP responses (SBR 4.9.9 option 1).
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		// SBR 7.1.2.2 (g): emailProtection SHALL be present; serverAuth,
		// codeSigning, timeStamping, anyEKU SHALL NOT. clientAuth MAY, and
		// multipurpose leaves carry it, so the chain allows it.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth},
		// SBR 7.1.2.2 (a), 7.1.6.3: the root and this CA are one operator
		// (Affiliates), so anyPolicy is allowed. Listing the reserved
		// subscriber OIDs instead makes zlint apply subscriber subject rules
		// to this CA certificate (e_mailbox_validated_allowed_subjectdn_attributes).
		Policies: []x509.OID{oidAnyPolicy},
		// SBR 7.1.2.2 (b), (c): CRL of the root over HTTP; caIssuers to the root.
		CRLDistributionPoints: []string{base + "/crl/" + rootID + ".crl"},
		IssuingCertificateURL: []string{base + "/ca/" + RootCertFile},
		SignatureAlgorithm:    x509.ECDSAWithSHA384,
	}
	issDER, err := x509.CreateCertificate(rand.Reader, issTmpl, root, issuingKey.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: creating issuing CA: %w", err)
	}
	issuer, err := x509.ParseCertificate(issDER)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, RootKeyFile), rootKey); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, IssuingKeyFile), issuingKey); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, RootCertFile), pemCert(rootDER), 0o644); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, IssuingCertFile), pemCert(issDER), 0o644); err != nil {
		return nil, err
	}
	a := &Authority{cfg: opts.Config, base: base, clock: clock, root: root, rootKey: rootKey,
		issuer: issuer, signer: &countingSigner{Signer: issuingKey}, chain: []*x509.Certificate{root}}
	if err := a.selfCheck(); err != nil {
		return nil, err
	}
	return a, nil
}

// Load reads CA material made by Init or Import from dir.
func Load(dir string, cfg Config, clock portal.Clock) (*Authority, error) {
	if err := ValidateProfiles(); err != nil {
		return nil, err
	}
	base, err := normalizeBase(cfg)
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, IssuingCertFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, IssuingKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, IssuingKeyFile)); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("ca: %s is readable by others (mode %v); chmod 600 it", IssuingKeyFile, fi.Mode().Perm())
	}
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	issuer := certs[0]
	if err := checkIssuingCA(issuer, key); err != nil {
		return nil, err
	}
	a := &Authority{cfg: cfg, base: base, clock: clock, issuer: issuer,
		signer: &countingSigner{Signer: key}, chain: certs[1:]}
	if b, err := os.ReadFile(filepath.Join(dir, RootCertFile)); err == nil {
		rc, err := parseCertsPEM(b)
		if err != nil {
			return nil, err
		}
		a.root = rc[0]
		if len(a.chain) == 0 || !a.chain[len(a.chain)-1].Equal(a.root) {
			a.chain = append(a.chain, a.root)
		}
		path := append([]*x509.Certificate{issuer}, a.chain...)
		for i := 0; i+1 < len(path); i++ {
			if err := path[i].CheckSignatureFrom(path[i+1]); err != nil {
				return nil, fmt.Errorf("ca: the chain from %s to %s does not verify: %w", IssuingCertFile, RootCertFile, err)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, RootKeyFile)); err == nil && a.root != nil {
		k, err := parseKeyPEM(b)
		if err != nil {
			return nil, err
		}
		if !publicKeysEqual(k.Public(), a.root.PublicKey) {
			return nil, fmt.Errorf("ca: %s does not match %s", RootKeyFile, RootCertFile)
		}
		a.rootKey = k
	}
	now := clock.Now()
	if now.After(issuer.NotAfter) || now.Before(issuer.NotBefore) {
		return nil, fmt.Errorf("ca: issuing CA certificate is not valid now (%s to %s)", issuer.NotBefore, issuer.NotAfter)
	}
	if err := a.selfCheck(); err != nil {
		return nil, err
	}
	return a, nil
}

// Import stores an existing issuing CA certificate and its private key in
// dir, for Load. certPEM holds the issuing CA certificate first, then
// optionally its chain; a self-signed last certificate is stored as the
// root. The key must match the certificate and the certificate must be a CA
// fit for S/MIME issuance (SBR 7.1.2.2). Existing files are not overwritten.
func Import(dir string, certPEM, keyPEM []byte) error {
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return err
	}
	if err := checkIssuingCA(certs[0], key); err != nil {
		return err
	}
	for i := 0; i+1 < len(certs); i++ {
		if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
			return fmt.Errorf("ca: chain certificate %d does not sign certificate %d: %w", i+1, i, err)
		}
	}
	for _, f := range []string{IssuingCertFile, IssuingKeyFile, RootCertFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("ca: %s already exists; refusing to overwrite CA material", f)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var chainPEM []byte
	last := certs[len(certs)-1]
	hasRoot := len(certs) > 1 && bytes.Equal(last.RawIssuer, last.RawSubject) && last.CheckSignatureFrom(last) == nil
	upper := certs
	if hasRoot {
		upper = certs[:len(certs)-1]
	}
	for _, c := range upper {
		chainPEM = append(chainPEM, pemCert(c.Raw)...)
	}
	if err := writeKey(filepath.Join(dir, IssuingKeyFile), key); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, IssuingCertFile), chainPEM, 0o644); err != nil {
		return err
	}
	if hasRoot {
		return writeFile(filepath.Join(dir, RootCertFile), pemCert(last.Raw), 0o644)
	}
	return nil
}

// checkIssuingCA validates an issuing CA certificate and its key: the key
// matches, it is a CA allowed to sign certificates and CRLs, its key is one
// the SBR allow, and its EKU fits S/MIME (SBR 7.1.2.2 g).
func checkIssuingCA(c *x509.Certificate, key crypto.Signer) error {
	if !publicKeysEqual(key.Public(), c.PublicKey) {
		return errors.New("ca: the private key does not match the issuing CA certificate")
	}
	if !c.BasicConstraintsValid || !c.IsCA {
		return errors.New("ca: the certificate is not a CA certificate (basicConstraints cA is not true)")
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return errors.New("ca: the CA certificate lacks keyCertSign or cRLSign (SBR 7.1.2.2 e)")
	}
	if len(c.SubjectKeyId) == 0 {
		return errors.New("ca: the CA certificate has no subjectKeyIdentifier (SBR 7.1.2.2 i)")
	}
	if _, err := issuerKeyType(c.PublicKey); err != nil {
		return err
	}
	email := false
	for _, u := range c.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageEmailProtection:
			email = true
		case x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageCodeSigning, x509.ExtKeyUsageTimeStamping, x509.ExtKeyUsageAny:
			return errors.New("ca: the CA certificate's EKU contains serverAuth, codeSigning, timeStamping or anyEKU (SBR 7.1.2.2 g)")
		}
	}
	if !email {
		return errors.New("ca: the CA certificate's EKU lacks emailProtection (SBR 7.1.2.2 g)")
	}
	return nil
}

// issuerKeyType names an issuer key: "rsa" (2048 bits or more), "p256" or
// "p384".
func issuerKeyType(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 || k.N.BitLen()%8 != 0 {
			return "", errors.New("ca: RSA issuer key must be at least 2048 bits, a multiple of 8 (SBR 6.1.5)")
		}
		return "rsa", nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return KeyP256, nil
		case elliptic.P384():
			return KeyP384, nil
		}
	}
	return "", fmt.Errorf("ca: unsupported issuer key type %T", pub)
}

func generateKey(kind string) (crypto.Signer, error) {
	switch kind {
	case KeyRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case KeyP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	return nil, fmt.Errorf("ca: unknown issuing key type %q (want rsa2048, p256 or p384)", kind)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func parseCertsPEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca: parsing certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("ca: no PEM CERTIFICATE found")
	}
	return out, nil
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("ca: no PEM private key found")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("ca: unsupported key PEM type %q (encrypted keys must be decrypted first)", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: parsing private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca: unsupported private key type %T", k)
	}
	return s, nil
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeFile writes a new file (never overwriting one) with the given mode,
// through a temporary file so a crash leaves no half-written key.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil { // umask may have narrowed it
		os.Remove(tmp)
		return err
	}
	if _, err := os.Stat(path); err == nil {
		os.Remove(tmp)
		return fmt.Errorf("ca: %s already exists", path)
	}
	return os.Rename(tmp, path)
}

// IssuerIDOf is the short stable identifier of a CA certificate used in
// CRL URLs: the first 8 bytes of SHA-256 over its SubjectPublicKeyInfo, hex.
func IssuerIDOf(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:8])
}

// IssuerID is the issuing CA's identifier in <base>/crl/<issuer-id>.crl.
func (a *Authority) IssuerID() string { return IssuerIDOf(a.issuer) }

// RootID is the root's identifier ("" when the root is unknown).
func (a *Authority) RootID() string {
	if a.root == nil {
		return ""
	}
	return IssuerIDOf(a.root)
}

// CRLURL is the issuing CA's CRL URL put in every subscriber certificate.
func (a *Authority) CRLURL() string { return a.base + "/crl/" + a.IssuerID() + ".crl" }

// OCSPURL is the OCSP responder URL put in every subscriber certificate.
func (a *Authority) OCSPURL() string { return a.base + "/ocsp" }

// IssuingCertURL is the caIssuers URL put in every subscriber certificate.
func (a *Authority) IssuingCertURL() string { return a.base + "/ca/" + IssuingCertFile }

// RootCertURL is the caIssuers URL of the issuing CA certificate.
func (a *Authority) RootCertURL() string { return a.base + "/ca/" + RootCertFile }

// IssuingCert returns the issuing CA certificate.
func (a *Authority) IssuingCert() *x509.Certificate { return a.issuer }

// IssuingDER returns the issuing CA certificate in DER (serve it at
// IssuingCertURL as application/pkix-cert).
func (a *Authority) IssuingDER() []byte { return bytes.Clone(a.issuer.Raw) }

// IssuingPEM returns the issuing CA certificate in PEM.
func (a *Authority) IssuingPEM() []byte { return pemCert(a.issuer.Raw) }

// RootCert returns the root CA certificate, nil when unknown (an imported
// issuing CA without its root).
func (a *Authority) RootCert() *x509.Certificate { return a.root }

// RootDER returns the root certificate in DER, nil when unknown.
func (a *Authority) RootDER() []byte {
	if a.root == nil {
		return nil
	}
	return bytes.Clone(a.root.Raw)
}

// RootPEM returns the root certificate in PEM, nil when unknown.
func (a *Authority) RootPEM() []byte {
	if a.root == nil {
		return nil
	}
	return pemCert(a.root.Raw)
}

// ChainDER returns the CA certificates above a subscriber certificate:
// the issuing CA first, then any intermediates, then the root when known.
func (a *Authority) ChainDER() [][]byte {
	out := [][]byte{bytes.Clone(a.issuer.Raw)}
	for _, c := range a.chain {
		out = append(out, bytes.Clone(c.Raw))
	}
	return out
}

// ChainPEM is ChainDER in PEM, concatenated.
func (a *Authority) ChainPEM() []byte {
	var out []byte
	for _, d := range a.ChainDER() {
		out = append(out, pemCert(d)...)
	}
	return out
}

// AllowedHashes lists the signature hashes this issuing CA may use
// (SBR 7.1.3.2): RSA sha256/sha384/sha512; P-256 sha256; P-384 sha384.
func (a *Authority) AllowedHashes() []portal.SignatureHash {
	kt, _ := issuerKeyType(a.issuer.PublicKey)
	switch kt {
	case KeyP256:
		return []portal.SignatureHash{portal.SHA256}
	case KeyP384:
		return []portal.SignatureHash{portal.SHA384}
	}
	return []portal.SignatureHash{portal.SHA256, portal.SHA384, portal.SHA512}
}
