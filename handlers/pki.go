package handlers

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"certdesk/internal/ca"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/views"
)

// The CA's public endpoints (SBR 7.1.2.3 b, c: plain HTTP URLs that are in
// every certificate):
//
//	GET  /ca                    page: download the root and issuing CA, how to trust them
//	GET  /ca/root.crt           root certificate, DER (caIssuers of the issuing CA)
//	GET  /ca/issuing.crt        issuing CA certificate, DER (caIssuers of subscribers)
//	GET  /ca/root.pem, /ca/issuing.pem   the same in PEM
//	GET  /crl/<issuer-id>.crl   CRL, DER (regenerated on revocation and daily)
//	GET  /ocsp/<base64>, POST /ocsp   OCSP responder (RFC 6960, RFC 5019)
//
// Everything but the page is served by a Pre middleware, before routing and
// the session, CSRF and logging middleware: relying parties send no
// cookies and no CSRF token (an OCSP POST would be refused), responses
// must stay cacheable (no Set-Cookie), and OCSP GET paths hold base64 with
// "/" and "//", which must reach the responder untouched.
func init() {
	registerRoutes(func(s *Server) {
		s.Echo.GET("/ca", s.pkiPage)
		s.Echo.Pre(s.pkiProtocol)
	})
}

func (s *Server) pkiProtocol(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.CA == nil || s.Certs == nil {
			return next(c)
		}
		r := c.Request()
		path := r.URL.Path
		var h http.Handler
		route := ""
		switch {
		case path == "/ocsp" || strings.HasPrefix(path, "/ocsp/"):
			h, route = http.StripPrefix("/ocsp", s.CA.OCSPHandler(s.ocspLookup(r))), "/ocsp/*"
		case strings.HasPrefix(path, "/crl/"):
			h, route = http.HandlerFunc(s.serveCRL), "/crl/:file"
		case path == "/ca/"+ca.RootCertFile, path == "/ca/"+ca.IssuingCertFile, path == "/ca/root.pem", path == "/ca/issuing.pem":
			h, route = http.HandlerFunc(s.serveCACert), "/ca/:file"
		default:
			return next(c)
		}
		start := time.Now()
		c.Response().Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(c.Response(), r)
		s.Log.Info("request", "method", r.Method, "route", route, "status", c.Response().Status,
			"bytes", c.Response().Size, "duration_ms", float64(time.Since(start).Microseconds())/1000, "ip", c.RealIP())
		return nil
	}
}

// ocspLookup answers from the certificates table: issued -> good,
// revoked -> revoked with time and reason; anything else (never recorded,
// being issued, refused before signing) -> unknown, never good (SBR 4.9.10).
// A failed query is an error (the responder answers internalError, not
// cached), never "unknown": the certificate may well be revoked.
func (s *Server) ocspLookup(r *http.Request) ca.OCSPLookup {
	return func(serial *big.Int) (ca.OCSPStatus, time.Time, int, bool, error) {
		c, err := s.DB.CertificateBySerial(r.Context(), s.CA.IssuerID(), ordering.SerialHex(serial))
		if portal.ErrorCode(err) == portal.ENotFound {
			return ca.OCSPGood, time.Time{}, 0, false, nil
		}
		if err != nil {
			s.Log.Error("OCSP look-up", "serial", ordering.SerialHex(serial), "err", err.Error())
			return ca.OCSPGood, time.Time{}, 0, false, err
		}
		switch c.Status {
		case "issued":
			return ca.OCSPGood, time.Time{}, 0, true, nil
		case "revoked":
			return ca.OCSPRevoked, c.RevokedAt, c.RevocationReason, true, nil
		}
		return ca.OCSPGood, time.Time{}, 0, false, nil
	}
}

func (s *Server) serveCRL(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	file := strings.TrimPrefix(r.URL.Path, "/crl/")
	id, ok := strings.CutSuffix(file, ".crl")
	if !ok || (id != s.CA.IssuerID() && id != s.CA.RootID()) || id == "" {
		http.NotFound(w, r)
		return
	}
	der, err := s.Certs.CurrentCRL(r.Context(), id)
	if portal.ErrorCode(err) == portal.ENotFound {
		http.Error(w, portal.ErrorMessage(err), http.StatusNotFound)
		return
	}
	if err != nil {
		s.Log.Error("CRL", "issuer", id, "err", err.Error())
		http.Error(w, "the CRL is not available", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	// Short caching: a revocation shows within minutes.
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(der)
	}
}

func (s *Server) serveCACert(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var der []byte
	name := strings.TrimPrefix(r.URL.Path, "/ca/")
	base, ext, _ := strings.Cut(name, ".")
	switch base {
	case "root":
		der = s.CA.RootDER()
	case "issuing":
		der = s.CA.IssuingDER()
	}
	if der == nil {
		http.NotFound(w, r)
		return
	}
	body, ct := der, "application/pkix-cert"
	if ext == "pem" {
		body, ct = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), "application/x-pem-file"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="certdesk-%s.%s"`, base, map[string]string{"pem": "pem", "crt": "crt"}[ext]))
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(body)
	}
}

// Fingerprint formats the SHA-256 of DER as colon-separated upper-case hex.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return colonHex(sum[:])
}

func colonHex(b []byte) string {
	var sb strings.Builder
	for i, x := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02X", x)
	}
	return sb.String()
}

func caCertVM(name string, c *x509.Certificate, base string) views.CACertVM {
	return views.CACertVM{Name: name, Subject: c.Subject.String(), NotBefore: c.NotBefore.UTC().Format(dateTime),
		NotAfter: c.NotAfter.UTC().Format(dateTime), Fingerprint: Fingerprint(c.Raw),
		DERURL: "/ca/" + base + ".crt", PEMURL: "/ca/" + base + ".pem"}
}

const dateTime = "2006-01-02 15:04 UTC"

func (s *Server) pkiPage(c echo.Context) error {
	if s.CA == nil {
		return echo.ErrNotFound
	}
	l := localizer(c)
	vm := views.PKIVM{Issuing: caCertVM(l.T("pki.issuing"), s.CA.IssuingCert(), "issuing"),
		CRLURL: s.CA.CRLURL(), OCSPURL: s.CA.OCSPURL()}
	if rc := s.CA.RootCert(); rc != nil {
		r := caCertVM(l.T("pki.root"), rc, "root")
		vm.Root = &r
	}
	return render(c, http.StatusOK, views.PKIPage(s.page(c, "pki.title"), vm))
}
