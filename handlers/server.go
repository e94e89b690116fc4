// Package handlers is the HTTP adapter: Echo routes, middleware (session,
// CSRF, security headers, request logs), the one error-code-to-status
// table, the pages and the JSON API. Handlers stay thin: bind, validate,
// one service call, render or redirect.
package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"certdesk/internal/ca"
	"certdesk/internal/identity"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/internal/validation"
	"certdesk/store"
)

// Config is the HTTP layer's configuration.
type Config struct {
	BaseURL string // e.g. http://localhost:8080
	Dev     bool
}

// Secure reports whether cookies must be Secure (an https base URL).
func (c Config) Secure() bool { return strings.HasPrefix(strings.ToLower(c.BaseURL), "https://") }

// Waker is anything that can be nudged to work now (the mail worker).
type Waker interface{ Wake() }

// Deps are the services the handlers call.
type Deps struct {
	DB          *store.DB
	Identity    *identity.Service
	Clock       portal.Clock
	Log         *slog.Logger
	SessionKeys [][]byte // hash key, block key
	Mail        Waker
	Ordering    *ordering.Service
	Billing     BillingInfo
	// Validation is the organization, domain and mailbox validation
	// service (internal/validation).
	Validation *validation.Service
	// CA is the certificate authority (internal/ca) and Certs the issuance
	// pipeline (certificates pages, revocation, CRL, OCSP). Nil when not
	// wired: those routes answer 404/503.
	CA    *ca.Authority
	Certs *ordering.Pipeline
	// KeyGen sends KeyGen links and runs the browser CSR exchange
	// (handlers/keygen.go). Nil when not wired: its routes answer 404.
	KeyGen *ordering.LinkService
}

// Server holds the Echo instance and the services.
type Server struct {
	Echo *echo.Echo
	Deps
	Cfg      Config
	sessions *sessionManager
	// extra route registrations added by feature files
}

// New builds the server with every route registered.
func New(cfg Config, d Deps) *Server {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// Use the TCP peer address: X-Forwarded-For is not trusted by default,
	// so rate limits cannot be dodged with a header.
	e.IPExtractor = echo.ExtractIPDirect()
	s := &Server{Echo: e, Deps: d, Cfg: cfg}
	if s.Mail == nil {
		s.Mail = noWake{}
	}
	s.sessions = newSessionManager(d.SessionKeys, cfg.Secure(), d.DB, d.Clock)
	e.HTTPErrorHandler = s.errorHandler
	s.middleware()
	s.routes()
	return s
}

type noWake struct{}

func (noWake) Wake() {}

// ServeHTTP lets the server be used as an http.Handler (tests, httptest).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Echo.ServeHTTP(w, r) }

// Shutdown stops the HTTP server gracefully.
func (s *Server) Shutdown(ctx context.Context) error { return s.Echo.Shutdown(ctx) }

func (s *Server) routes() {
	e := s.Echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/static/*", s.static)

	e.GET("/", s.home)
	e.GET("/signin", s.signInPage)
	e.POST("/signin", s.signIn)
	e.POST("/signout", s.signOut)
	e.GET("/setup/:token", s.setupPage)
	e.POST("/setup/:token", s.setup)
	e.GET("/lang/:lang", s.setLang)

	// Route-level middleware, not a Group with Use: a group's middleware
	// would also run for unknown paths and turn every 404 into a redirect.
	e.GET("/dashboard", s.dashboard, s.requireUser)

	for _, r := range extraRoutes {
		r(s)
	}
}

// extraRoutes lets feature files register their routes from init, so
// features do not all edit one routes function.
var extraRoutes []func(*Server)

// registerRoutes adds a feature's route registration.
func registerRoutes(f func(*Server)) { extraRoutes = append(extraRoutes, f) }
