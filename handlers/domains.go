package handlers

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"certdesk/internal/i18n"
	"certdesk/internal/portal"
	"certdesk/internal/validation"
	"certdesk/views"
)

// Domain pages (validation feature): list and add, one domain's
// instructions with "Check now", and changing the method (new value).
func init() {
	registerRoutes(func(s *Server) {
		e := s.Echo
		admin := requireRole(portal.RoleAccountAdmin)
		e.GET("/domains", s.domainList, s.requireUser, requireCustomer)
		e.POST("/domains", s.domainAdd, s.requireUser, admin)
		e.GET("/domains/:id", s.domainPage, s.requireUser, requireCustomer)
		e.POST("/domains/:id/check", s.domainCheck, s.requireUser, admin)
		e.POST("/domains/:id/method", s.domainMethod, s.requireUser, admin)
	})
}

var dcvMethods = []portal.DCVMethod{portal.DCVDNSTXT, portal.DCVDNSCNAME, portal.DCVHTTP, portal.DCVEmail}

func methodOptions(l *i18n.Localizer) []views.Option {
	out := make([]views.Option, 0, len(dcvMethods))
	for _, m := range dcvMethods {
		out = append(out, views.Option{Value: string(m), Label: l.T("val.method." + string(m)), Note: l.T("val.method." + string(m) + ".hint")})
	}
	return out
}

func domainStatusClass(st portal.DomainStatus) string {
	switch st {
	case portal.DomainValidated:
		return "ok"
	case portal.DomainExpired:
		return "bad"
	}
	return "warn"
}

func (s *Server) domainList(c echo.Context) error {
	f := views.NewForm()
	f.Values["organization"] = c.QueryParam("org")
	f.Values["method"] = string(portal.DCVDNSTXT)
	return s.renderDomainList(c, http.StatusOK, f)
}

func (s *Server) renderDomainList(c echo.Context, status int, f views.Form) error {
	ctx := c.Request().Context()
	u := currentUser(c)
	l := localizer(c)
	now := s.Clock.Now()
	orgs, err := s.Validation.Orgs(ctx, u.AccountID)
	if err != nil {
		return err
	}
	names := map[int64]string{}
	vm := views.DomainListVM{Form: f, IsAdmin: u.IsAdmin(), Methods: methodOptions(l)}
	for _, o := range orgs {
		names[o.ID] = o.LegalName
		vm.Orgs = append(vm.Orgs, views.Option{Value: strconv.FormatInt(o.ID, 10), Label: o.LegalName})
	}
	ds, err := s.Validation.Domains(ctx, u.AccountID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		st := d.State(now)
		row := views.DomainRowVM{ID: d.ID, Name: d.Name, Org: names[d.OrganizationID], Method: l.T("val.method." + string(d.Method)),
			Status: l.T("val.domain.status." + string(st)), StatusCls: domainStatusClass(st), OrderID: d.OrderID}
		if st != portal.DomainPending {
			row.Expires = fmtDate(d.ExpiresAt)
		}
		vm.Domains = append(vm.Domains, row)
	}
	return render(c, status, views.DomainList(s.page(c, "val.domains.title"), vm))
}

func (s *Server) domainAdd(c echo.Context) error {
	u := currentUser(c)
	f := views.NewForm()
	f.Values = formValues(c, "organization", "domain", "method")
	orgID, _ := strconv.ParseInt(f.Values["organization"], 10, 64)
	rec, err := s.Validation.AddDomain(c.Request().Context(), actorOf(c), u.AccountID, orgID, f.Values["domain"],
		portal.DCVMethod(f.Values["method"]), localizer(c).Lang)
	if err != nil {
		if !isFormError(err) {
			return err
		}
		formErrors(c, &f, err)
		return s.renderDomainList(c, StatusFor(err), f)
	}
	s.Mail.Wake()
	flash(c, "val.flash.domain_added")
	return c.Redirect(http.StatusSeeOther, "/domains/"+strconv.FormatInt(rec.ID, 10))
}

func (s *Server) domainPage(c echo.Context) error {
	return s.renderDomainPage(c, http.StatusOK, nil, "")
}

func checkVM(r validation.CheckRecord) *views.CheckVM {
	return &views.CheckVM{At: fmtStamp(r.At), OK: r.OK, Detail: r.Detail, Found: r.Found, Expected: r.Expected}
}

func (s *Server) renderDomainPage(c echo.Context, status int, check *views.CheckVM, checkErr string) error {
	ctx := c.Request().Context()
	u := currentUser(c)
	l := localizer(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	d, err := s.Validation.Domain(ctx, u.AccountID, id)
	if err != nil {
		return err
	}
	org, _, err := s.Validation.Org(ctx, u.AccountID, d.OrganizationID)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	st := d.State(now)
	in := s.Validation.InstructionsFor(d)
	vm := views.DomainPageVM{ID: d.ID, Name: d.Name, Org: org.LegalName, OrgID: org.ID, Method: string(d.Method),
		MethodLabel: l.T("val.method." + string(d.Method)), Status: l.T("val.domain.status." + string(st)), StatusCls: domainStatusClass(st),
		Current: st == portal.DomainValidated, Expired: st == portal.DomainExpired, Validated: fmtStamp(d.ValidatedAt),
		Expires: fmtDate(d.ExpiresAt), ValidatedBy: d.ValidationMethod, Public: portal.IsPublicMailDomain(d.Name), OrderID: d.OrderID,
		Value: in.Value, TXTName: in.Name, TXTAltName: in.AltName, HTTPURL: in.URL, Emails: in.Emails,
		Methods: methodOptions(l), IsAdmin: u.IsAdmin(), CheckError: checkErr}
	if d.Method == portal.DCVDNSCNAME {
		vm.CNAMEName, vm.CNAMETarget = in.Name, in.Target
	}
	if !d.ValueExpiresAt.IsZero() {
		vm.ValueExpires = fmtStamp(d.ValueExpiresAt)
		vm.ValueExpired = !now.Before(d.ValueExpiresAt)
	}
	if st == portal.DomainExpired {
		// a domain past its 398 days needs a fresh value and a new check
		vm.ValueExpired = true
	}
	vm.Check = check
	if vm.Check == nil && !d.LastCheck.At.IsZero() {
		vm.Check = checkVM(d.LastCheck)
	}
	return render(c, status, views.DomainPage(s.page(c, "val.domains.title"), vm))
}

func (s *Server) domainCheck(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	res, err := s.Validation.CheckDomain(c.Request().Context(), actorOf(c), u.AccountID, id)
	if err != nil {
		// not found, internal: the error page; rate limit, value expired,
		// nothing to check: the domain page with the reason
		if !isFormError(err) {
			return err
		}
		f := views.NewForm()
		formErrors(c, &f, err)
		msg := f.Error
		for _, m := range f.Errors {
			if msg == "" {
				msg = m
			}
		}
		return s.renderDomainPage(c, StatusFor(err), nil, msg)
	}
	if res.OK {
		flash(c, "val.flash.domain_validated")
		return c.Redirect(http.StatusSeeOther, "/domains/"+strconv.FormatInt(id, 10))
	}
	return s.renderDomainPage(c, http.StatusOK, &views.CheckVM{At: fmtStamp(s.Clock.Now()), OK: false, Detail: res.Detail,
		Found: res.Found, Expected: res.Expected}, "")
}

func (s *Server) domainMethod(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	m := portal.DCVMethod(strings.TrimSpace(c.FormValue("method")))
	if err := s.Validation.ChangeMethod(c.Request().Context(), actorOf(c), u.AccountID, id, m, localizer(c).Lang); err != nil {
		if !isFormError(err) {
			return err
		}
		f := views.NewForm()
		formErrors(c, &f, err)
		msg := f.Error
		if msg == "" {
			msg = f.Errors["method"]
		}
		return s.renderDomainPage(c, StatusFor(err), nil, msg)
	}
	s.Mail.Wake()
	if m == portal.DCVEmail {
		flash(c, "val.flash.domain_emails_sent")
	} else {
		flash(c, "val.flash.domain_new_value")
	}
	return c.Redirect(http.StatusSeeOther, "/domains/"+strconv.FormatInt(id, 10))
}
