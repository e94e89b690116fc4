package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// RevocationReason is an RFC 5280 CRLReason code with its name.
type RevocationReason struct {
	Code int
	Name string
}

// RevocationReasons are the reasons certdesk allows (SBR 4.9.1.1, 7.2.2).
// certificateHold (6) is never allowed: certdesk does not suspend, and the
// strict generation forbids it. unspecified (0) is recorded but written as
// no reasonCode extension (SBR 7.2.2: "SHALL NOT be unspecified (0) ...
// omit the reasonCode entry extension").
var RevocationReasons = []RevocationReason{
	{0, "unspecified"},
	{1, "keyCompromise"},
	{3, "affiliationChanged"},
	{4, "superseded"},
	{5, "cessationOfOperation"},
	{9, "privilegeWithdrawn"},
}

// ReasonAllowed reports whether code is in RevocationReasons.
func ReasonAllowed(code int) bool {
	for _, r := range RevocationReasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// ReasonName returns the RFC 5280 name of an allowed code, "" otherwise.
func ReasonName(code int) string {
	for _, r := range RevocationReasons {
		if r.Code == code {
			return r.Name
		}
	}
	return ""
}

// Revoked is one revoked subscriber certificate.
type Revoked struct {
	Serial    *big.Int
	RevokedAt time.Time
	Reason    int // one of RevocationReasons
}

// CRLValidity is nextUpdate - thisUpdate of subscriber CRLs. SBR 4.9.7:
// reissued at least every 7 days, nextUpdate at most 10 days after
// thisUpdate. The web layer should regenerate at least daily.
const CRLValidity = 7 * 24 * time.Hour

// RootCRLValidity is the same for the root's CRL (SBR 4.9.7: at most twelve
// months).
const RootCRLValidity = 180 * 24 * time.Hour

// CRL returns the issuing CA's CRL (DER) listing revoked, with CRL number
// number, thisUpdate now and nextUpdate now + CRLValidity. Serve it at
// CRLURL() as application/pkix-crl.
func (a *Authority) CRL(revoked []Revoked, number *big.Int, now time.Time) ([]byte, error) {
	return makeCRL(a.issuer, a.signer, revoked, number, now, CRLValidity)
}

// CanSignRootCRL reports whether the root key is in the CA directory, so
// RootCRL works. A root kept offline publishes its CRL elsewhere.
func (a *Authority) CanSignRootCRL() bool { return a.root != nil && a.rootKey != nil }

// RootCRL returns the root's CRL (for the issuing CA certificate's CRL
// distribution point, <base>/crl/<RootID>.crl); it needs the root key in the
// CA directory.
func (a *Authority) RootCRL(revoked []Revoked, number *big.Int, now time.Time) ([]byte, error) {
	if !a.CanSignRootCRL() {
		return nil, errors.New("ca: the root key is not available")
	}
	return makeCRL(a.root, a.rootKey, revoked, number, now, RootCRLValidity)
}

func makeCRL(issuer *x509.Certificate, key crypto.Signer, revoked []Revoked, number *big.Int, now time.Time, validity time.Duration) ([]byte, error) {
	if number == nil || number.Sign() < 0 || number.BitLen() > 159 {
		return nil, errors.New("ca: CRL number must be non-negative and at most 20 octets (RFC 5280 5.2.3)")
	}
	now = now.UTC().Truncate(time.Second)
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, r := range revoked {
		if r.Serial == nil || r.Serial.Sign() <= 0 {
			return nil, errors.New("ca: revoked entry without a positive serial")
		}
		if !ReasonAllowed(r.Reason) {
			return nil, fmt.Errorf("ca: revocation reason %d is not allowed (SBR 7.2.2)", r.Reason)
		}
		// ReasonCode 0 makes crypto/x509 omit the reasonCode extension,
		// as SBR 7.2.2 requires for unspecified.
		entries = append(entries, x509.RevocationListEntry{
			SerialNumber:   r.Serial,
			RevocationTime: r.RevokedAt.UTC().Truncate(time.Second),
			ReasonCode:     r.Reason,
		})
	}
	tmpl := &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    number,
		ThisUpdate:                now,
		NextUpdate:                now.Add(validity),
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
}

// OCSPStatus is a certificate's status for OCSP.
type OCSPStatus int

const (
	OCSPGood OCSPStatus = iota
	OCSPRevoked
)

// OCSPLookup finds a serial issued by this CA. known is false for a serial
// this CA never issued; then the answer is "unknown", never "good"
// (SBR 4.9.10). err is for a failed look-up (the database is down): the
// status is not known, so the answer is internalError, never a signed
// "unknown" that caches would keep.
type OCSPLookup func(serial *big.Int) (status OCSPStatus, revokedAt time.Time, reason int, known bool, err error)

// OCSPValidity is nextUpdate - thisUpdate of OCSP responses (SBR 4.9.10:
// between 8 hours and 10 days).
const OCSPValidity = 24 * time.Hour

// OCSPReuse is how long a signed response is answered again while the
// certificate's status stays what it was (RFC 5019 2.2.1: pre-produced
// responses; the requests carry no nonce). The status is looked up on every
// request and is part of the cache key, so a revocation is answered at
// once; reuse only saves the signature, which anyone could otherwise make
// the CA compute per request. SBR 4.9.10 asks for fresh information at
// least every half validity (12 hours here): an hour is well inside.
const OCSPReuse = time.Hour

// ocspCacheMax bounds the reused responses kept (a few hundred bytes each);
// when full, the cache starts over.
const ocspCacheMax = 10000

type ocspKey struct {
	hash      crypto.Hash
	serial    string
	status    int
	revokedAt int64
	reason    int
}

type ocspEntry struct {
	der        []byte
	thisUpdate time.Time
}

type ocspCache struct {
	mu sync.Mutex
	m  map[ocspKey]ocspEntry
}

func (c *ocspCache) get(k ocspKey, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || now.Before(e.thisUpdate) || now.Sub(e.thisUpdate) >= OCSPReuse {
		return nil, false
	}
	return e.der, true
}

func (c *ocspCache) put(k ocspKey, e ocspEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= ocspCacheMax {
		c.m = map[ocspKey]ocspEntry{}
	}
	c.m[k] = e
}

// OCSPResponse answers a DER OCSP request, signed by the issuing CA itself
// (SBR 4.9.9 option 1; no delegated responder to manage). A malformed
// request gets the malformedRequest response, a request for another issuer
// gets unauthorized (RFC 6960 2.3), an unknown serial of this issuer a
// signed "unknown". The returned error is only for internal failures,
// a failed look-up included.
func (a *Authority) OCSPResponse(reqDER []byte, lookup OCSPLookup) ([]byte, error) {
	req, err := ocsp.ParseRequest(reqDER)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse, nil
	}
	if !a.requestIsForUs(req) {
		return ocsp.UnauthorizedErrorResponse, nil
	}
	now := a.clock.Now().UTC().Truncate(time.Second)
	tmpl := ocsp.Response{
		SerialNumber: req.SerialNumber,
		ThisUpdate:   now,
		NextUpdate:   now.Add(OCSPValidity),
		IssuerHash:   req.HashAlgorithm,
	}
	status, revokedAt, reason, known, err := lookup(req.SerialNumber)
	if err != nil {
		return nil, fmt.Errorf("ca: OCSP look-up of serial %X: %w", req.SerialNumber, err)
	}
	switch {
	case !known:
		tmpl.Status = ocsp.Unknown
	case status == OCSPRevoked:
		tmpl.Status = ocsp.Revoked
		tmpl.RevokedAt = revokedAt.UTC().Truncate(time.Second)
		if !ReasonAllowed(reason) {
			reason = ocsp.Unspecified
		}
		// SBR 7.3: revocationReason in RevokedInfo (0 is omitted), never
		// a reasonCode singleExtension.
		tmpl.RevocationReason = reason
	default:
		tmpl.Status = ocsp.Good
	}
	key := ocspKey{hash: req.HashAlgorithm, serial: req.SerialNumber.Text(16), status: tmpl.Status,
		revokedAt: tmpl.RevokedAt.Unix(), reason: tmpl.RevocationReason}
	if der, ok := a.ocsp.get(key, now); ok {
		return der, nil
	}
	der, err := ocsp.CreateResponse(a.issuer, a.issuer, tmpl, a.signer)
	if err != nil {
		return nil, err
	}
	a.ocsp.put(key, ocspEntry{der: der, thisUpdate: now})
	return der, nil
}

// requestIsForUs compares the request's issuer name and key hashes with the
// issuing CA's, using the request's hash algorithm.
func (a *Authority) requestIsForUs(req *ocsp.Request) bool {
	h := req.HashAlgorithm
	if !h.Available() {
		return false
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(a.issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return false
	}
	nh := h.New()
	nh.Write(a.issuer.RawSubject)
	kh := h.New()
	kh.Write(spki.PublicKey.RightAlign())
	return bytes.Equal(nh.Sum(nil), req.IssuerNameHash) && bytes.Equal(kh.Sum(nil), req.IssuerKeyHash)
}

// maxOCSPRequest bounds a POST body or GET path.
const maxOCSPRequest = 4096

// OCSPHandler serves the OCSP responder (RFC 6960 appendix A, RFC 5019):
// GET /<url-encoded base64 request> and POST with the DER request as body
// (Content-Type application/ocsp-request). Mount it so the request arrives
// with the responder prefix stripped, e.g.
// http.StripPrefix("/ocsp", a.OCSPHandler(lookup)); "/" + base64 is then
// the path (GET /ocsp/<b64> and POST /ocsp both work).
func (a *Authority) OCSPHandler(lookup OCSPLookup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var der []byte
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			p := r.URL.EscapedPath()
			p = strings.TrimPrefix(p, "/")
			if len(p) > maxOCSPRequest {
				writeOCSP(w, r, ocsp.MalformedRequestErrorResponse, false)
				return
			}
			s, err := url.PathUnescape(p)
			if err != nil {
				writeOCSP(w, r, ocsp.MalformedRequestErrorResponse, false)
				return
			}
			// Some clients leave '+' unescaped in paths that proxies
			// then turn into spaces.
			s = strings.ReplaceAll(s, " ", "+")
			der, err = base64.StdEncoding.DecodeString(s)
			if err != nil {
				der, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
			}
			if err != nil || len(der) == 0 {
				writeOCSP(w, r, ocsp.MalformedRequestErrorResponse, false)
				return
			}
		case http.MethodPost:
			if ct := r.Header.Get("Content-Type"); ct != "" {
				if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/ocsp-request" {
					http.Error(w, "Content-Type must be application/ocsp-request", http.StatusUnsupportedMediaType)
					return
				}
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, maxOCSPRequest+1))
			if err != nil || len(body) > maxOCSPRequest {
				writeOCSP(w, r, ocsp.MalformedRequestErrorResponse, false)
				return
			}
			der = body
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		resp, err := a.OCSPResponse(der, lookup)
		if err != nil {
			w.Header().Set("Content-Type", "application/ocsp-response")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(ocsp.InternalErrorErrorResponse)
			return
		}
		signed := !bytes.Equal(resp, ocsp.MalformedRequestErrorResponse) && !bytes.Equal(resp, ocsp.UnauthorizedErrorResponse)
		writeOCSP(w, r, resp, signed)
	})
}

func writeOCSP(w http.ResponseWriter, r *http.Request, body []byte, cacheable bool) {
	h := w.Header()
	h.Set("Content-Type", "application/ocsp-response")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if cacheable && r.Method != http.MethodPost {
		// RFC 5019 6.2: cacheable GET responses; an hour keeps revocation
		// news fresh while sparing the signer.
		h.Set("Cache-Control", "public, max-age=3600, no-transform, must-revalidate")
	} else {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
