package handlers

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"certdesk/internal/identity"
	"certdesk/internal/portal"
	"certdesk/views"
)

func (s *Server) home(c echo.Context) error {
	if currentUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, "/dashboard")
	}
	return c.Redirect(http.StatusSeeOther, "/signin")
}

func (s *Server) signInPage(c echo.Context) error {
	if currentUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, "/dashboard")
	}
	return render(c, http.StatusOK, views.SignIn(s.page(c, "signin.title"), views.NewForm()))
}

func (s *Server) signIn(c echo.Context) error {
	f := views.NewForm()
	f.Values["email"] = strings.TrimSpace(c.FormValue("email"))
	u, err := s.Identity.SignIn(c.Request().Context(), f.Values["email"], c.FormValue("password"), c.RealIP())
	if err != nil {
		if !isFormError(err) && portal.ErrorCode(err) != portal.EUnauthorized {
			return err
		}
		formErrors(c, &f, err)
		// show the credentials message above the form, not beside one field
		f.Error, f.Errors = f.Errors["password"], map[string]string{}
		return render(c, StatusFor(err), views.SignIn(s.page(c, "signin.title"), f))
	}
	next := "/dashboard"
	if sess := sessionOf(c); sess != nil {
		if p, _ := sess.Values[afterSignInKey].(string); localPath(p) {
			next = p
		}
	}
	if err := s.sessions.start(c, u); err != nil {
		return err
	}
	s.Log.Info("signed in", "user_id", u.ID, "role", u.Role)
	_ = s.DB.Audit(c.Request().Context(), nil, auditFor(c, &u, "signin", "user", u.ID, u.AccountID, ""))
	return c.Redirect(http.StatusSeeOther, next)
}

// afterSignInKey holds, in the session, the page a signed-out visitor
// asked for (requireUser); signing in goes there instead of the dashboard.
const afterSignInKey = "after_signin"

// localPath: a path on this site, never another host (no open redirect).
// Browsers drop tabs and newlines in URLs ("/\t/evil.example" becomes
// "//evil.example") and read "\\" as "/", so neither may appear.
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\\t\r\n ")
}

func (s *Server) signOut(c echo.Context) error {
	if err := s.sessions.end(c); err != nil {
		return err
	}
	flash(c, "signin.signed_out")
	return c.Redirect(http.StatusSeeOther, "/signin")
}

func (s *Server) setupPage(c echo.Context) error {
	token := c.Param("token")
	state, err := s.Identity.SetupState(c.Request().Context(), token)
	if err != nil {
		return err
	}
	if state != "ok" {
		return s.setupProblem(c, state)
	}
	return render(c, http.StatusOK, views.Setup(s.page(c, "setup.title"), views.NewForm(), token))
}

func (s *Server) setupProblem(c echo.Context, state string) error {
	l := localizer(c)
	status := http.StatusNotFound
	if state == "used" || state == "expired" {
		status = http.StatusGone
	}
	return render(c, status, views.LinkProblem(s.page(c, "setup.title"), l.T("setup.link_"+state+".heading"), l.T("setup.link_"+state+".body")))
}

func (s *Server) setup(c echo.Context) error {
	token := c.Param("token")
	state, err := s.Identity.SetupState(c.Request().Context(), token)
	if err != nil {
		return err
	}
	if state != "ok" {
		return s.setupProblem(c, state)
	}
	f := views.NewForm()
	f.Values = formValues(c, "name", "email")
	in := identity.SetupInput{Name: f.Values["name"], Email: f.Values["email"], Password: c.FormValue("password"), Confirm: c.FormValue("confirm")}
	u, err := s.Identity.CompleteSetup(c.Request().Context(), token, in)
	if err != nil {
		if !isFormError(err) {
			return err
		}
		formErrors(c, &f, err)
		return render(c, StatusFor(err), views.Setup(s.page(c, "setup.title"), f, token))
	}
	_ = s.DB.Audit(c.Request().Context(), nil, auditFor(c, &u, "setup.ca_admin_created", "user", u.ID, 0, ""))
	if err := s.sessions.start(c, u); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/dashboard")
}

func (s *Server) setLang(c echo.Context) error {
	lang := c.Param("lang")
	ok := false
	for _, l := range []string{"en", "nl"} {
		ok = ok || l == lang
	}
	if !ok {
		return portal.Errorf(portal.ENotFound, "unknown language")
	}
	if sess := sessionOf(c); sess != nil {
		sess.Values["lang"] = lang
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return err
		}
	}
	if u := currentUser(c); u != nil {
		if err := s.DB.SetUserLang(c.Request().Context(), u.ID, lang); err != nil {
			return err
		}
	}
	next := c.QueryParam("next")
	// only local paths: no open redirect
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		next = "/"
	}
	return c.Redirect(http.StatusSeeOther, next)
}
