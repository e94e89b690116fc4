package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
	"golang.org/x/crypto/ocsp"

	"certdesk/internal/portal"
)

func TestCRL(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KeyRSA2048, KeyP256, KeyP384} {
		a := testCA(t, kind)
		revokedAt := testNow.Add(-2 * time.Hour)
		s1, s2, s3 := NewSerial(), NewSerial(), NewSerial()
		der, err := a.CRL([]Revoked{
			{Serial: s1, RevokedAt: revokedAt, Reason: 0},
			{Serial: s2, RevokedAt: revokedAt, Reason: 1},
			{Serial: s3, RevokedAt: revokedAt, Reason: 4},
		}, big.NewInt(42), testNow)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(a.IssuingCert()); err != nil {
			t.Fatalf("%s: CRL signature: %v", kind, err)
		}
		if err := crl.CheckSignatureFrom(testCA(t, otherKind(kind)).IssuingCert()); err == nil {
			t.Fatal("CRL verifies under another CA")
		}
		if !crl.ThisUpdate.Equal(testNow) || crl.NextUpdate.Sub(crl.ThisUpdate) > 10*24*time.Hour || !crl.NextUpdate.After(crl.ThisUpdate) {
			t.Fatalf("thisUpdate %s nextUpdate %s (SBR 4.9.7: at most 10 days)", crl.ThisUpdate, crl.NextUpdate)
		}
		if crl.Number.Int64() != 42 || !bytes.Equal(crl.AuthorityKeyId, a.IssuingCert().SubjectKeyId) {
			t.Fatal("CRL number or AKI")
		}
		if len(crl.RevokedCertificateEntries) != 3 {
			t.Fatalf("%d entries", len(crl.RevokedCertificateEntries))
		}
		for _, e := range crl.RevokedCertificateEntries {
			hasReasonExt := false
			for _, x := range e.Extensions {
				if x.Id.String() == "2.5.29.21" {
					hasReasonExt = true
				}
			}
			switch e.SerialNumber.String() {
			case s1.String(): // SBR 7.2.2: unspecified means no reasonCode
				if hasReasonExt || e.ReasonCode != 0 {
					t.Error("unspecified reason written as an extension")
				}
			case s2.String():
				if e.ReasonCode != 1 {
					t.Error("keyCompromise lost")
				}
			case s3.String():
				if e.ReasonCode != 4 {
					t.Error("superseded lost")
				}
			}
			if !e.RevocationTime.Equal(revokedAt) {
				t.Error("revocation time")
			}
		}
		// zlint's CRL lints (RFC 5280 and S/MIME BR sources) find nothing.
		zc, err := zx509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		reg, _ := lintRegistry()
		for name, r := range zlint.LintRevocationListEx(zc, reg).Results {
			if r.Status == lint.Error || r.Status == lint.Warn || r.Status == lint.Fatal {
				t.Errorf("%s: CRL lint %s: %s", kind, name, r.Details)
			}
		}
	}
	a := testCA(t, KeyP256)
	// certificateHold (6) and reasons outside SBR 7.2.2 are refused.
	for _, reason := range []int{2, 6, 7, 8, 10, -1} {
		if _, err := a.CRL([]Revoked{{Serial: NewSerial(), RevokedAt: testNow, Reason: reason}}, big.NewInt(1), testNow); err == nil {
			t.Errorf("reason %d accepted", reason)
		}
	}
	if ReasonAllowed(6) || !ReasonAllowed(9) || ReasonName(5) != "cessationOfOperation" {
		t.Fatal("reason list")
	}
	// Empty CRL, and the root's CRL for the issuing CA's CRL DP.
	if _, err := a.CRL(nil, big.NewInt(1), testNow); err != nil {
		t.Fatal(err)
	}
	rootDER, err := a.RootCRL(nil, big.NewInt(1), testNow)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := x509.ParseRevocationList(rootDER)
	if err != nil || rc.CheckSignatureFrom(a.RootCert()) != nil || rc.NextUpdate.After(testNow.AddDate(1, 0, 0)) {
		t.Fatalf("root CRL: %v", err)
	}
	if a.IssuingCert().CRLDistributionPoints[0] != testBase+"/crl/"+a.RootID()+".crl" {
		t.Fatalf("issuing CA CRL DP %v", a.IssuingCert().CRLDistributionPoints)
	}
}

func otherKind(k string) string {
	if k == KeyP256 {
		return KeyP384
	}
	return KeyP256
}

type ocspDB map[string]struct {
	status    OCSPStatus
	revokedAt time.Time
	reason    int
}

func (db ocspDB) lookup(serial *big.Int) (OCSPStatus, time.Time, int, bool, error) {
	e, ok := db[serial.String()]
	return e.status, e.revokedAt, e.reason, ok, nil
}

func issueFor(t *testing.T, a *Authority) *Issued {
	t.Helper()
	is, err := a.Issue(requestFor(mustProduct(t, portal.ProductIndividual), subscriberKeys()["p256"].Public()))
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func TestOCSP(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{KeyRSA2048, KeyP256, KeyP384} {
		a := testCA(t, kind)
		good, revoked, unknown := issueFor(t, a), issueFor(t, a), issueFor(t, a)
		revokedAt := testNow.Add(-time.Hour)
		db := ocspDB{
			good.Serial.String():    {status: OCSPGood},
			revoked.Serial.String(): {status: OCSPRevoked, revokedAt: revokedAt, reason: 1},
		}
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			ask := func(is *Issued) *ocsp.Response {
				req, err := ocsp.CreateRequest(is.Certificate, a.IssuingCert(), &ocsp.RequestOptions{Hash: h})
				if err != nil {
					t.Fatal(err)
				}
				der, err := a.OCSPResponse(req, db.lookup)
				if err != nil {
					t.Fatal(err)
				}
				// ParseResponse checks the signature with the issuer.
				r, err := ocsp.ParseResponseForCert(der, is.Certificate, a.IssuingCert())
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				if r.SerialNumber.Cmp(is.Serial) != 0 || r.IssuerHash != h {
					t.Fatal("response for another certificate or hash")
				}
				if d := r.NextUpdate.Sub(r.ThisUpdate); d < 8*time.Hour || d > 10*24*time.Hour {
					t.Fatalf("validity interval %v (SBR 4.9.10: 8 h to 10 days)", d)
				}
				if r.Certificate != nil {
					t.Fatal("no responder certificate expected: the issuing CA signs")
				}
				return r
			}
			if r := ask(good); r.Status != ocsp.Good {
				t.Fatalf("%s good: status %d", kind, r.Status)
			}
			r := ask(revoked)
			if r.Status != ocsp.Revoked || !r.RevokedAt.Equal(revokedAt) || r.RevocationReason != 1 {
				t.Fatalf("%s revoked: %+v", kind, r)
			}
			if r := ask(unknown); r.Status != ocsp.Unknown {
				t.Fatalf("%s unknown serial: status %d, want unknown (never good, SBR 4.9.10)", kind, r.Status)
			}
		}
		// A certificate of another CA: unauthorized.
		other := testCA(t, otherKind(kind))
		oi := issueFor(t, other)
		req, _ := ocsp.CreateRequest(oi.Certificate, other.IssuingCert(), nil)
		der, _ := a.OCSPResponse(req, db.lookup)
		var re ocsp.ResponseError
		if _, err := ocsp.ParseResponse(der, nil); !errors.As(err, &re) || re.Status != ocsp.Unauthorized {
			t.Fatalf("other issuer: %v", err)
		}
		// Garbage: malformedRequest.
		der, _ = a.OCSPResponse([]byte("not ocsp"), db.lookup)
		if _, err := ocsp.ParseResponse(der, nil); !errors.As(err, &re) || re.Status != ocsp.Malformed {
			t.Fatalf("garbage: %v", err)
		}
		// A failed look-up is an internal error, never a signed "unknown".
		failing := func(*big.Int) (OCSPStatus, time.Time, int, bool, error) {
			return OCSPGood, time.Time{}, 0, false, errors.New("database is closed")
		}
		req, _ = ocsp.CreateRequest(good.Certificate, a.IssuingCert(), nil)
		if der, err := a.OCSPResponse(req, failing); err == nil || der != nil {
			t.Fatalf("failed look-up: %x %v", der, err)
		}
	}
}

func TestOCSPHandler(t *testing.T) {
	t.Parallel()
	a := testCA(t, KeyP256)
	good, revoked := issueFor(t, a), issueFor(t, a)
	db := ocspDB{
		good.Serial.String():    {status: OCSPGood},
		revoked.Serial.String(): {status: OCSPRevoked, revokedAt: testNow.Add(-time.Hour), reason: 4},
	}
	srv := httptest.NewServer(http.StripPrefix("/ocsp", a.OCSPHandler(db.lookup)))
	defer srv.Close()
	client := srv.Client()

	parse := func(resp *http.Response, is *Issued) *ocsp.Response {
		t.Helper()
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/ocsp-response" {
			t.Fatalf("status %d type %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		r, err := ocsp.ParseResponseForCert(body, is.Certificate, a.IssuingCert())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	reqFor := func(is *Issued) []byte {
		b, err := ocsp.CreateRequest(is.Certificate, a.IssuingCert(), &ocsp.RequestOptions{Hash: crypto.SHA256})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// GET with the URL-escaped base64 request in the path (RFC 6960 A.1).
	get := srv.URL + "/ocsp/" + url.PathEscape(base64.StdEncoding.EncodeToString(reqFor(good)))
	resp, err := client.Get(get)
	if err != nil {
		t.Fatal(err)
	}
	if r := parse(resp, good); r.Status != ocsp.Good || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Fatalf("GET good: %d %s", r.Status, resp.Header.Get("Cache-Control"))
	}
	// POST application/ocsp-request.
	resp, err = client.Post(srv.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(reqFor(revoked)))
	if err != nil {
		t.Fatal(err)
	}
	if r := parse(resp, revoked); r.Status != ocsp.Revoked || r.RevocationReason != 4 {
		t.Fatalf("POST revoked: %+v", r)
	}
	// GET with an unescaped request whose base64 contains '/' and '+'.
	var raw string
	for i := 0; i < 50; i++ {
		is := issueFor(t, a)
		db[is.Serial.String()] = db[good.Serial.String()]
		raw = base64.StdEncoding.EncodeToString(reqFor(is))
		if strings.ContainsAny(raw, "/+") {
			resp, err = client.Get(srv.URL + "/ocsp/" + raw)
			if err != nil {
				t.Fatal(err)
			}
			if r := parse(resp, is); r.Status != ocsp.Good {
				t.Fatal("unescaped GET")
			}
			break
		}
	}
	// Wrong method, wrong content type, garbage.
	resp, _ = client.Do(mustReq(t, http.MethodPut, srv.URL+"/ocsp"))
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	resp, _ = client.Post(srv.URL+"/ocsp", "text/plain", strings.NewReader("x"))
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain POST: %d", resp.StatusCode)
	}
	resp, _ = client.Get(srv.URL + "/ocsp/@@not-base64@@")
	body, _ := io.ReadAll(resp.Body)
	if !bytes.Equal(body, ocsp.MalformedRequestErrorResponse) {
		t.Fatalf("garbage GET: %x", body)
	}
	resp, _ = client.Post(srv.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(bytes.Repeat([]byte{0x30}, 10000)))
	body, _ = io.ReadAll(resp.Body)
	if !bytes.Equal(body, ocsp.MalformedRequestErrorResponse) {
		t.Fatalf("oversized POST: %x", body)
	}
}

func mustReq(t *testing.T, method, u string) *http.Request {
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A signed OCSP response is answered again for OCSPReuse while the
// certificate's status is unchanged (no signature per request), a
// revocation is answered at once, and after OCSPReuse a new response is
// signed.
func TestOCSPResponsesReused(t *testing.T) {
	clock := portal.NewFixedClock(testNow)
	a, err := Init(t.TempDir(), InitOptions{Config: Config{BaseURL: testBase}, IssuingKeyType: KeyP256}, clock)
	if err != nil {
		t.Fatal(err)
	}
	is := issueFor(t, a)
	db := ocspDB{is.Serial.String(): {status: OCSPGood}}
	req, err := ocsp.CreateRequest(is.Certificate, a.IssuingCert(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ask := func() (*ocsp.Response, []byte) {
		t.Helper()
		der, err := a.OCSPResponse(req, db.lookup)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ocsp.ParseResponseForCert(der, is.Certificate, a.IssuingCert())
		if err != nil {
			t.Fatal(err)
		}
		return r, der
	}
	signed := a.signer.n.Load()
	r1, der1 := ask()
	clock.Advance(OCSPReuse - time.Minute)
	r2, der2 := ask()
	if !bytes.Equal(der1, der2) || r2.Status != ocsp.Good || a.signer.n.Load() != signed+1 {
		t.Fatalf("within %v: same response %v, signatures %d, want 1", OCSPReuse, bytes.Equal(der1, der2), a.signer.n.Load()-signed)
	}
	// Revoked meanwhile: answered at once, not the cached "good".
	db[is.Serial.String()] = struct {
		status    OCSPStatus
		revokedAt time.Time
		reason    int
	}{OCSPRevoked, clock.Now().Add(-time.Second), 1}
	if r, _ := ask(); r.Status != ocsp.Revoked || r.RevocationReason != 1 {
		t.Fatalf("after revocation: status %d reason %d", r.Status, r.RevocationReason)
	}
	// OCSPReuse after that response, a fresh one (a new thisUpdate) is signed.
	clock.Advance(OCSPReuse)
	r3, _ := ask()
	if !r3.ThisUpdate.After(r1.ThisUpdate) || r3.Status != ocsp.Revoked {
		t.Fatalf("after %v: thisUpdate %v (first %v), status %d", OCSPReuse, r3.ThisUpdate, r1.ThisUpdate, r3.Status)
	}
	if n := a.signer.n.Load() - signed; n != 3 {
		t.Fatalf("%d signatures for good, revoked, refreshed revoked; want 3", n)
	}
}

// OCSP responses for one good certificate (RSA-2048 issuing CA): signed
// afresh each time (the clock moves by OCSPReuse between requests) and
// reused.
//
//	go test ./internal/ca -run '^$' -bench OCSPResponse
func BenchmarkOCSPResponse(b *testing.B) {
	clock := portal.NewFixedClock(testNow)
	a, err := Init(b.TempDir(), InitOptions{Config: Config{BaseURL: testBase}, IssuingKeyType: KeyRSA2048}, clock)
	if err != nil {
		b.Fatal(err)
	}
	is, err := a.Issue(requestFor(mustProduct(b, portal.ProductIndividual), subscriberKeys()["p256"].Public()))
	if err != nil {
		b.Fatal(err)
	}
	db := ocspDB{is.Serial.String(): {status: OCSPGood}}
	req, _ := ocsp.CreateRequest(is.Certificate, a.IssuingCert(), nil)
	for _, fresh := range []bool{true, false} {
		name := "reused"
		if fresh {
			name = "signed"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if fresh {
					clock.Advance(OCSPReuse)
				}
				if _, err := a.OCSPResponse(req, db.lookup); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
