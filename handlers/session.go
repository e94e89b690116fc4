package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"certdesk/internal/portal"
	"certdesk/store"
)

// Session lifetimes.
const (
	IdleTimeout     = 2 * time.Hour
	AbsoluteTimeout = 12 * time.Hour
	cookieName      = "certdesk_session"
	touchEvery      = time.Minute
)

// sessionManager keeps a random session id in a signed and encrypted
// gorilla/sessions cookie and the session itself server-side (hashed id),
// so sign-out really ends it: a copied cookie finds no row.
type sessionManager struct {
	store *sessions.CookieStore
	db    *store.DB
	clock portal.Clock
}

func newSessionManager(keys [][]byte, secure bool, db *store.DB, clock portal.Clock) *sessionManager {
	cs := sessions.NewCookieStore(keys...)
	cs.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(AbsoluteTimeout / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	return &sessionManager{store: cs, db: db, clock: clock}
}

func (m *sessionManager) get(r *http.Request) *sessions.Session {
	s, err := m.store.Get(r, cookieName)
	if err != nil {
		// a cookie from old keys or tampered: start afresh
		s, _ = m.store.New(r, cookieName)
	}
	return s
}

// loadUser returns the signed-in user for the request, if any, enforcing
// the idle and absolute timeouts.
func (m *sessionManager) loadUser(ctx context.Context, sess *sessions.Session) (*portal.User, string) {
	sid, _ := sess.Values["sid"].(string)
	if sid == "" {
		return nil, ""
	}
	h := portal.HashToken(sid)
	rec, err := m.db.GetSession(ctx, h)
	if err != nil {
		return nil, ""
	}
	now := m.clock.Now()
	if now.Sub(rec.LastSeenAt) > IdleTimeout || now.Sub(rec.CreatedAt) > AbsoluteTimeout {
		_ = m.db.DeleteSession(ctx, h)
		return nil, ""
	}
	u, err := m.db.UserByID(ctx, rec.UserID)
	if err != nil {
		return nil, ""
	}
	if now.Sub(rec.LastSeenAt) > touchEvery {
		_ = m.db.TouchSession(ctx, h, now)
	}
	return &u, h
}

// start begins a new session for u: a new id and a new CSRF token.
func (m *sessionManager) start(c echo.Context, u portal.User) error {
	sess := m.get(c.Request())
	if old, _ := sess.Values["sid"].(string); old != "" {
		_ = m.db.DeleteSession(c.Request().Context(), portal.HashToken(old))
	}
	sid := portal.NewToken()
	if err := m.db.CreateSession(c.Request().Context(), portal.HashToken(sid), u.ID, c.RealIP()); err != nil {
		return err
	}
	sess.Values = map[any]any{"sid": sid, "csrf": portal.NewToken()}
	if u.Lang != "" {
		sess.Values["lang"] = u.Lang
	}
	return sess.Save(c.Request(), c.Response())
}

// end deletes the server-side session and clears the cookie.
func (m *sessionManager) end(c echo.Context) error {
	sess := m.get(c.Request())
	if sid, _ := sess.Values["sid"].(string); sid != "" {
		if err := m.db.DeleteSession(c.Request().Context(), portal.HashToken(sid)); err != nil {
			return err
		}
	}
	lang := sess.Values["lang"]
	sess.Values = map[any]any{"csrf": portal.NewToken()}
	if lang != nil {
		sess.Values["lang"] = lang
	}
	return sess.Save(c.Request(), c.Response())
}
