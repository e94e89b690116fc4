package handlers

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"certdesk/internal/portal"
	"certdesk/views"
)

// Public pages opened from email links: approve a domain (TLS BR
// 3.2.2.4.4 constructed email) and confirm a mailbox (SBR 3.2.2.2). GET
// only shows the page; the link is used by the POST of its button, so mail
// scanners that fetch links do not use them up. The request log records
// the route pattern, never the token.
func init() {
	registerRoutes(func(s *Server) {
		e := s.Echo
		e.GET("/verify/domain/:token", s.verifyDomainPage)
		e.POST("/verify/domain/:token", s.verifyDomain)
		e.GET("/verify/mailbox/:token", s.verifyMailboxPage)
		e.POST("/verify/mailbox/:token", s.verifyMailbox)
		e.POST("/mailboxes/resend", s.mailboxResend, s.requireUser, requireCustomer)
	})
}

// linkProblem renders a clear page for a link that cannot be used: 404 for
// an unknown link, 410 Gone for a used, replaced or expired one.
func (s *Server) linkProblem(c echo.Context, kind string, err error) error {
	pe := domainErr(err)
	if pe == nil || pe.Key == "" || !strings.HasPrefix(pe.Key, "verify.") {
		return err
	}
	l := localizer(c)
	status := http.StatusGone
	if pe.Code == portal.ENotFound {
		status = http.StatusNotFound
	}
	vm := views.VerifyVM{Kind: kind, ProblemTitle: l.T(pe.Key + ".title"), ProblemBody: l.T(pe.Key + "." + kind)}
	return render(c, status, views.Verify(s.page(c, "verify.title"), vm))
}

func (s *Server) verifyDomainPage(c echo.Context) error {
	tok := c.Param("token")
	info, err := s.Validation.DomainApprovalInfo(c.Request().Context(), tok)
	if err != nil {
		return s.linkProblem(c, "domain", err)
	}
	vm := views.VerifyVM{Kind: "domain", Action: "/verify/domain/" + url.PathEscape(tok), Domain: info.Domain, Org: info.Org,
		Email: info.Email, Expires: info.Expires}
	return render(c, http.StatusOK, views.Verify(s.page(c, "verify.title"), vm))
}

func (s *Server) verifyDomain(c echo.Context) error {
	info, err := s.Validation.ApproveDomain(c.Request().Context(), c.Param("token"), c.RealIP())
	if err != nil {
		return s.linkProblem(c, "domain", err)
	}
	vm := views.VerifyVM{Kind: "domain", Done: true, Domain: info.Domain, Email: info.Email}
	return render(c, http.StatusOK, views.Verify(s.page(c, "verify.title"), vm))
}

func (s *Server) verifyMailboxPage(c echo.Context) error {
	tok := c.Param("token")
	info, err := s.Validation.MailboxInfo(c.Request().Context(), tok)
	if err != nil {
		return s.linkProblem(c, "mailbox", err)
	}
	vm := views.VerifyVM{Kind: "mailbox", Action: "/verify/mailbox/" + url.PathEscape(tok), Email: info.Email,
		Expires: fmtStamp(info.Expires)}
	return render(c, http.StatusOK, views.Verify(s.page(c, "verify.title"), vm))
}

func (s *Server) verifyMailbox(c echo.Context) error {
	info, err := s.Validation.ConfirmMailbox(c.Request().Context(), c.Param("token"), c.RealIP())
	if err != nil {
		return s.linkProblem(c, "mailbox", err)
	}
	vm := views.VerifyVM{Kind: "mailbox", Done: true, Email: info.Email}
	return render(c, http.StatusOK, views.Verify(s.page(c, "verify.title"), vm))
}

// mailboxResend sends a new confirmation link (the old one dies) for an
// address the account asked to confirm, then goes back to a local page
// (form fields: email, return).
func (s *Server) mailboxResend(c echo.Context) error {
	u := currentUser(c)
	err := s.Validation.ResendMailbox(c.Request().Context(), actorOf(c), u.AccountID, c.FormValue("email"), localizer(c).Lang)
	if err != nil {
		return err
	}
	s.Mail.Wake()
	flash(c, "val.flash.mailbox_resent")
	back := c.FormValue("return")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\\r\n") {
		back = "/orders"
	}
	return c.Redirect(http.StatusSeeOther, back)
}
