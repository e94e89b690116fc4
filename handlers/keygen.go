package handlers

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"certdesk/internal/i18n"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/static"
	"certdesk/views"
	"certdesk/wasm/keygen"
)

// KeyGen (issue 6): the page opened from the emailed link (no sign-in: the
// link is the credential), the CSR exchange its script calls, the
// requestor's "send a new link", and the WebAssembly module under a
// cache-busting name. The request log records route patterns only
// ("/keygen/:token"), so the token never reaches a log line.
func init() {
	registerRoutes(func(s *Server) {
		e := s.Echo
		e.GET("/keygen/:token", s.keygenPage)
		e.POST("/keygen/exchange", s.keygenExchange)
		e.POST("/orders/:id/recipients/:rid/keygen-link", s.keygenResend, s.requireUser, requireCustomer)
		// More specific than /static/*: keygen.<sha256 prefix>.wasm (and
		// the plain keygen.wasm, briefly cached).
		e.GET("/static/keygen.:file", s.keygenWasm)
		// Hash the module now, not on the first recipient's request.
		go loadWasm()
	})
}

// maxExchangeBody bounds the exchange's JSON (a token and one CSR of at
// most 16 KiB, ca.MaxCSRSize).
const maxExchangeBody = 64 << 10

// linkStatus is the HTTP status of a refused link.
func linkStatus(state string) int {
	switch state {
	case ordering.LinkUnknown:
		return http.StatusNotFound
	case ordering.LinkClosed, ordering.LinkOrgExpired:
		return http.StatusConflict
	}
	return http.StatusGone // expired, spent, replaced
}

func p12Name(email string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(`\/:*?"<>|`, r) || r < 0x20 {
			return '_'
		}
		return r
	}, email) + ".p12"
}

func (s *Server) keygenPage(c echo.Context) error {
	h := c.Response().Header()
	// The URL holds the credential: no Referer to anything the page loads
	// or links to, no caching, no indexing.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Robots-Tag", "noindex, nofollow")
	if s.KeyGen == nil {
		return echo.ErrNotFound
	}
	l := localizer(c)
	p := s.page(c, "keygen.title")
	info, err := s.KeyGen.Open(c.Request().Context(), c.Param("token"))
	if st := ordering.LinkState(err); st != "" {
		vm := views.KeyGenVM{Problem: st, ProblemTitle: l.T("keygen.link." + st + ".title"), ProblemBody: l.T("keygen.link." + st + ".body")}
		p.Title = vm.ProblemTitle
		return render(c, linkStatus(st), views.KeyGen(p, vm))
	}
	if err != nil {
		return err
	}
	r := info.Recipient
	vm := views.KeyGenVM{
		Token: c.Param("token"), Email: r.Email, Org: info.OrgName,
		Product:     l.T("product." + string(info.Order.Product)),
		Expires:     info.Link.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"),
		WasmURL:     keygenWasmURL(),
		ExchangeURL: "/keygen/exchange",
		MinLength:   keygen.MinPasswordLength,
		FileName:    p12Name(r.Email),
	}
	if r.CNFromName {
		vm.Name = r.CommonName
	}
	return render(c, http.StatusOK, views.KeyGen(p, vm))
}

type exchangeRequest struct {
	Token string `json:"token"`
	CSR   string `json:"csr"`
}

type exchangeMessage struct {
	Message string `json:"message"`
}

func exchangeError(c echo.Context, status int, msg string) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, map[string][]exchangeMessage{"errors": {{Message: msg}}})
}

// sameOrigin reports whether a request comes from a page of this portal:
// Sec-Fetch-Site, when sent, must be same-origin, and Origin, when sent,
// must be the portal's (its base URL, or the scheme and host the request
// was made to). A request with neither header is refused: every browser
// that runs the KeyGen page sends Origin with a POST.
func (s *Server) sameOrigin(c echo.Context) bool {
	r := c.Request()
	sfs := r.Header.Get("Sec-Fetch-Site")
	origin := r.Header.Get("Origin")
	if sfs == "" && origin == "" {
		return false
	}
	if sfs != "" && sfs != "same-origin" {
		return false
	}
	if origin == "" {
		return true
	}
	if origin == c.Scheme()+"://"+r.Host {
		return true
	}
	if u, err := url.Parse(s.Cfg.BaseURL); err == nil && u.Host != "" && origin == u.Scheme+"://"+u.Host {
		return true
	}
	return false
}

// keygenExchange takes {"token","csr"} from the KeyGen page and answers
// {"certificate": PEM, "chain": [PEM...]}, or a 4xx {"errors":[{"message"}]}
// with the message in the visitor's language. The CSRF middleware has
// already checked X-CSRF-Token against the session the page set.
func (s *Server) keygenExchange(c echo.Context) error {
	l := localizer(c)
	if s.KeyGen == nil {
		return exchangeError(c, http.StatusNotFound, l.T("keygen.link.unknown.body"))
	}
	if !s.sameOrigin(c) {
		return exchangeError(c, http.StatusForbidden, l.T("error.403.body"))
	}
	if !strings.HasPrefix(c.Request().Header.Get("Content-Type"), "application/json") {
		return exchangeError(c, http.StatusUnsupportedMediaType, l.T("keygen.msg.failed"))
	}
	var req exchangeRequest
	body := http.MaxBytesReader(c.Response(), c.Request().Body, maxExchangeBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return exchangeError(c, http.StatusRequestEntityTooLarge, l.T("csr.too_large"))
		}
		return exchangeError(c, http.StatusBadRequest, l.T("keygen.msg.failed"))
	}
	cert, err := s.KeyGen.Exchange(c.Request().Context(), req.Token, req.CSR)
	if err != nil {
		if st := ordering.LinkState(err); st != "" {
			return exchangeError(c, linkStatus(st), l.T("keygen.link."+st+".body"))
		}
		status := StatusFor(err)
		if status >= 500 {
			s.Log.Error("keygen exchange failed", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err.Error())
			return exchangeError(c, http.StatusInternalServerError, l.T("keygen.msg.failed"))
		}
		return exchangeError(c, status, translated(l, err))
	}
	chain := cert.ChainPEM
	if chain == nil {
		chain = []string{}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"certificate": cert.CertificatePEM, "chain": chain})
}

// translated is a domain error's message in the visitor's language when
// the catalogue has its key, else its own (English) message.
func translated(l *i18n.Localizer, err error) string {
	var pe *portal.Error
	if errors.As(err, &pe) {
		if pe.Key != "" && i18n.Has(l.Lang, pe.Key) {
			return l.T(pe.Key, pe.Data)
		}
		return pe.Message
	}
	return portal.ErrorMessage(err)
}

// keygenResend is the order page's "Send a new KeyGen link" (see
// ordering.LinkService.Resend: a certificate issued through the old link
// is revoked as superseded).
func (s *Server) keygenResend(c echo.Context) error {
	if s.KeyGen == nil {
		return echo.ErrNotFound
	}
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	rid, err := parseID(c, "rid")
	if err != nil {
		return err
	}
	back := "/orders/" + strconv.FormatInt(id, 10)
	err = s.KeyGen.Resend(c.Request().Context(), u.AccountID, id, rid, u.Email)
	if portal.ErrorCode(err) == portal.EConflict {
		if pe := domainErr(err); pe != nil && pe.Key != "" {
			flash(c, pe.Key)
		}
		return c.Redirect(http.StatusSeeOther, back)
	}
	if err != nil {
		return err
	}
	_ = s.DB.Audit(c.Request().Context(), nil, auditFor(c, u, "keygen.link_sent", "recipient", rid, u.AccountID, ""))
	flash(c, "keygen.flash.sent")
	return c.Redirect(http.StatusSeeOther, back)
}

// wasmAsset is the embedded KeyGen module with its content hash and its
// compressed forms. scripts/wasm.sh writes keygen.wasm.gz (gzip -9) and
// keygen.wasm.br (brotli -q 11) next to the module, with
// keygen.wasm.sha256 naming the module they were made from; stale or
// missing files are not used (gzip is then made here once, on first use).
type wasmAsset struct {
	raw, br []byte
	hash    string // first 16 hex digits of the SHA-256 of raw

	gzOnce sync.Once
	gz     []byte
}

var (
	wasmOnce sync.Once
	wasm     *wasmAsset
)

func loadWasm() *wasmAsset {
	wasmOnce.Do(func() {
		raw, err := fs.ReadFile(static.FS, "keygen.wasm")
		if err != nil || len(raw) == 0 {
			return
		}
		sum := sha256.Sum256(raw)
		full := hex.EncodeToString(sum[:])
		a := &wasmAsset{raw: raw, hash: full[:16]}
		if m, err := fs.ReadFile(static.FS, "keygen.wasm.sha256"); err == nil && strings.TrimSpace(strings.Fields(string(m) + " x")[0]) == full {
			a.br, _ = fs.ReadFile(static.FS, "keygen.wasm.br")
			if gz, err := fs.ReadFile(static.FS, "keygen.wasm.gz"); err == nil && len(gz) > 0 {
				a.gzOnce.Do(func() { a.gz = gz })
			}
		}
		wasm = a
	})
	return wasm
}

func (a *wasmAsset) gzipped() []byte {
	a.gzOnce.Do(func() {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = w.Write(a.raw)
		if w.Close() == nil {
			a.gz = b.Bytes()
		}
	})
	return a.gz
}

// keygenWasmURL is the module's cache-busting URL ("" when the module was
// not built into this binary; the page then says it cannot start).
func keygenWasmURL() string {
	a := loadWasm()
	if a == nil {
		return ""
	}
	return "/static/keygen." + a.hash + ".wasm"
}

// accepts reports whether an Accept-Encoding header allows coding.
func accepts(header, coding string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), coding) {
			continue
		}
		params = strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return !(params == "q=0" || params == "q=0.0" || params == "q=0.00" || params == "q=0.000")
	}
	return false
}

// keygenWasm serves the module as application/wasm (instantiateStreaming
// needs it), brotli or gzip when the client accepts it. The hashed name
// is cached for a year; the plain /static/keygen.wasm for five minutes.
func (s *Server) keygenWasm(c echo.Context) error {
	a := loadWasm()
	if a == nil {
		return echo.ErrNotFound
	}
	cache := ""
	switch c.Param("file") {
	case a.hash + ".wasm":
		cache = "public, max-age=31536000, immutable"
	case "wasm":
		cache = "public, max-age=300"
	default:
		return echo.ErrNotFound
	}
	h := c.Response().Header()
	h.Set("Cache-Control", cache)
	h.Set("Vary", "Accept-Encoding")
	body, enc := a.raw, ""
	ae := c.Request().Header.Get("Accept-Encoding")
	switch {
	case len(a.br) > 0 && accepts(ae, "br"):
		body, enc = a.br, "br"
	case accepts(ae, "gzip"):
		if gz := a.gzipped(); len(gz) > 0 {
			body, enc = gz, "gzip"
		}
	}
	etag := `"` + a.hash + "-" + enc + `"`
	h.Set("ETag", etag)
	if enc != "" {
		h.Set("Content-Encoding", enc)
	}
	if match := c.Request().Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	// The bytes are in memory: say how many, so the response is not sent
	// chunked and the browser knows the size up front.
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	return c.Blob(http.StatusOK, "application/wasm", body)
}
