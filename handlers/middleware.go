package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"certdesk/internal/i18n"
	"certdesk/internal/portal"
	"certdesk/views"
)

// Context keys.
const (
	ctxUser    = "user"
	ctxSession = "session"
	ctxCSRF    = "csrf"
	ctxLoc     = "loc"
)

// ContentSecurityPolicy is strict: no inline script or style, no eval;
// 'wasm-unsafe-eval' lets the KeyGen page compile its WebAssembly module.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (s *Server) middleware() {
	e := s.Echo
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{Generator: portal.NewToken}))
	e.Use(s.requestLog)
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisablePrintStack: true, LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
		s.Log.Error("panic", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err, "stack", string(stack))
		return err
	}}))
	e.Use(securityHeaders)
	e.Use(middleware.BodyLimit("2M"))
	e.Use(s.sessionAndLang)
	e.Use(s.csrf)
}

// requestLog writes one slog line per request with the request id. It logs
// the route pattern, never the raw path or query: links carry credentials
// (setup, KeyGen, validation tokens).
func (s *Server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "(no route)"
		}
		s.Log.Info("request",
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			"method", c.Request().Method,
			"route", route,
			"status", c.Response().Status,
			"bytes", c.Response().Size,
			"duration_ms", float64(time.Since(start).Microseconds())/1000,
			"ip", c.RealIP(),
		)
		return nil
	}
}

func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		return next(c)
	}
}

func isAPI(c echo.Context) bool { return strings.HasPrefix(c.Request().URL.Path, "/api/") }

func isStatic(c echo.Context) bool {
	p := c.Request().URL.Path
	return strings.HasPrefix(p, "/static/") || p == "/healthz" || p == "/readyz"
}

// sessionAndLang loads the session cookie, the signed-in user, the CSRF
// token (creating one for anonymous visitors) and the language.
func (s *Server) sessionAndLang(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isStatic(c) || isAPI(c) {
			return next(c)
		}
		sess := s.sessions.get(c.Request())
		c.Set(ctxSession, sess)
		if u, _ := s.sessions.loadUser(c.Request().Context(), sess); u != nil {
			c.Set(ctxUser, u)
		} else if sid, _ := sess.Values["sid"].(string); sid != "" {
			delete(sess.Values, "sid") // ended or expired: drop it from the cookie
			_ = sess.Save(c.Request(), c.Response())
		}
		tok, _ := sess.Values["csrf"].(string)
		if tok == "" {
			tok = portal.NewToken()
			sess.Values["csrf"] = tok
			if err := sess.Save(c.Request(), c.Response()); err != nil {
				return err
			}
		}
		c.Set(ctxCSRF, tok)
		pref, _ := sess.Values["lang"].(string)
		if u := currentUser(c); u != nil && u.Lang != "" && pref == "" {
			pref = u.Lang
		}
		c.Set(ctxLoc, i18n.For(pref, c.Request().Header.Get("Accept-Language")))
		return next(c)
	}
}

// csrf refuses a state-changing request without the session's token
// (form field "csrf" or header X-CSRF-Token) with 403. The JSON API,
// authenticated by API key and not by cookie, is exempt.
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if isAPI(c) || isStatic(c) {
			return next(c)
		}
		want, _ := c.Get(ctxCSRF).(string)
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.FormValue("csrf")
		}
		if want == "" || got == "" || !portal.TokenEqual(want, got) {
			return &portal.Error{Code: portal.EForbidden, Key: "error.csrf", Message: "This form has expired. Go back, reload the page and try again."}
		}
		return next(c)
	}
}

// requireUser sends anonymous visitors to the sign-in page.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if currentUser(c) == nil {
			if c.Request().Method == http.MethodGet {
				// Back here after signing in: a link in an email (the
				// "certificate issued" notice) opened in a signed-out
				// browser led to the dashboard instead. Not a download:
				// the browser would stay on the sign-in form.
				if sess := sessionOf(c); sess != nil && !strings.Contains(c.Path(), "/download/") {
					sess.Values[afterSignInKey] = c.Request().URL.RequestURI()
					_ = sess.Save(c.Request(), c.Response())
				}
				return c.Redirect(http.StatusSeeOther, "/signin")
			}
			return &portal.Error{Code: portal.EUnauthorized, Message: "Sign in first."}
		}
		return next(c)
	}
}

// requireRole allows only the listed roles.
func requireRole(roles ...portal.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u := currentUser(c)
			if u == nil {
				return c.Redirect(http.StatusSeeOther, "/signin")
			}
			for _, r := range roles {
				if u.Role == r {
					return next(c)
				}
			}
			return &portal.Error{Code: portal.EForbidden, Message: "You do not have access to this page."}
		}
	}
}

// requireCustomer allows users of a customer account.
func requireCustomer(next echo.HandlerFunc) echo.HandlerFunc {
	return requireRole(portal.RoleAccountAdmin, portal.RoleUser)(next)
}

func currentUser(c echo.Context) *portal.User {
	u, _ := c.Get(ctxUser).(*portal.User)
	return u
}

func localizer(c echo.Context) *i18n.Localizer {
	if l, ok := c.Get(ctxLoc).(*i18n.Localizer); ok {
		return l
	}
	return i18n.For(c.Request().Header.Get("Accept-Language"))
}

// page builds the view model every page needs.
func (s *Server) page(c echo.Context, titleKey string) views.Page {
	l := localizer(c)
	p := views.Page{Title: l.T(titleKey), L: l, Path: c.Request().URL.Path, Dev: s.Cfg.Dev}
	p.CSRF, _ = c.Get(ctxCSRF).(string)
	if u := currentUser(c); u != nil {
		vm := &views.UserVM{Name: u.Name, Email: u.Email, Role: string(u.Role), IsStaff: u.Role.IsStaff(),
			IsCAAdmin: u.Role == portal.RoleCAAdmin, IsAdmin: u.IsAdmin()}
		if u.AccountID != 0 {
			if a, err := s.DB.AccountByID(c.Request().Context(), u.AccountID); err == nil {
				vm.AccountName = a.Name
			}
		}
		p.User = vm
	}
	if sess := sessionOf(c); sess != nil {
		if fl := sess.Flashes(); len(fl) > 0 {
			if msg, ok := fl[0].(string); ok {
				p.Flash = l.T(msg)
			}
			_ = sess.Save(c.Request(), c.Response())
		}
	}
	return p
}
