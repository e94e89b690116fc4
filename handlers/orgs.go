package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"certdesk/internal/portal"
	"certdesk/internal/validation"
	"certdesk/views"
)

// Organization pages (validation feature): list, add, edit, submit for
// prevalidation, and the voicemail code a contact enters.
func init() {
	registerRoutes(func(s *Server) {
		e := s.Echo
		admin := requireRole(portal.RoleAccountAdmin)
		e.GET("/organizations", s.orgList, s.requireUser, requireCustomer)
		e.GET("/organizations/new", s.orgNew, s.requireUser, admin)
		e.POST("/organizations/new", s.orgCreate, s.requireUser, admin)
		e.GET("/organizations/:id", s.orgPage, s.requireUser, requireCustomer)
		e.GET("/organizations/:id/edit", s.orgEdit, s.requireUser, admin)
		e.POST("/organizations/:id/edit", s.orgUpdate, s.requireUser, admin)
		e.POST("/organizations/:id/submit", s.orgSubmit, s.requireUser, admin)
		e.POST("/organizations/:id/code", s.orgCode, s.requireUser, requireCustomer)
	})
}

// orgFormFields are the organization form's fields.
var orgFormFields = []string{"legal_name", "assumed_name", "address", "city", "postal_code", "country", "phone", "registration",
	"org_contact_name", "org_contact_email", "org_contact_phone", "tech_contact_name", "tech_contact_email", "tech_contact_phone"}

func actorOf(c echo.Context) validation.Actor {
	a := validation.Actor{IP: c.RealIP()}
	if u := currentUser(c); u != nil {
		a.UserID, a.Email = u.ID, u.Email
	}
	return a
}

func orgInput(v map[string]string) validation.OrgInput {
	return validation.OrgInput{LegalName: v["legal_name"], AssumedName: v["assumed_name"], Address: v["address"], City: v["city"],
		PostalCode: v["postal_code"], Country: v["country"], Phone: v["phone"], Registration: v["registration"],
		OrgContact:  portal.Contact{Name: v["org_contact_name"], Email: v["org_contact_email"], Phone: v["org_contact_phone"]},
		TechContact: portal.Contact{Name: v["tech_contact_name"], Email: v["tech_contact_email"], Phone: v["tech_contact_phone"]}}
}

func orgValues(o portal.Organization) map[string]string {
	return map[string]string{"legal_name": o.LegalName, "assumed_name": o.AssumedName, "address": o.Address, "city": o.City,
		"postal_code": o.PostalCode, "country": o.Country, "phone": o.Phone, "registration": o.Registration,
		"org_contact_name": o.OrgContact.Name, "org_contact_email": o.OrgContact.Email, "org_contact_phone": o.OrgContact.Phone,
		"tech_contact_name": o.TechContact.Name, "tech_contact_email": o.TechContact.Email, "tech_contact_phone": o.TechContact.Phone}
}

func orgStatusClass(st portal.OrgStatus) string {
	switch st {
	case portal.OrgValidated:
		return "ok"
	case portal.OrgPending:
		return "warn"
	case portal.OrgRejected, portal.OrgExpired:
		return "bad"
	}
	return ""
}

func fmtDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

func fmtStamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 MST")
}

func (s *Server) orgList(c echo.Context) error {
	u := currentUser(c)
	l := localizer(c)
	orgs, err := s.Validation.Orgs(c.Request().Context(), u.AccountID)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	vm := views.OrgListVM{IsAdmin: u.IsAdmin()}
	for _, o := range orgs {
		st := o.State(now)
		row := views.OrgRowVM{ID: o.ID, Name: o.LegalName, Assumed: o.AssumedName, Country: o.Country,
			Status: l.T("org.status." + string(st)), StatusCls: orgStatusClass(st)}
		if st == portal.OrgValidated || st == portal.OrgExpired {
			row.Expires = fmtDate(o.ExpiresAt)
		}
		vm.Orgs = append(vm.Orgs, row)
	}
	return render(c, http.StatusOK, views.OrgList(s.page(c, "val.orgs.title"), vm))
}

func (s *Server) orgNew(c echo.Context) error {
	f := views.NewForm()
	return render(c, http.StatusOK, views.OrgForm(s.page(c, "val.org.new_title"), views.OrgFormVM{Form: f}))
}

func (s *Server) orgCreate(c echo.Context) error {
	u := currentUser(c)
	f := views.NewForm()
	f.Values = formValues(c, orgFormFields...)
	o, err := s.Validation.CreateOrg(c.Request().Context(), actorOf(c), u.AccountID, orgInput(f.Values), localizer(c).Lang)
	if err != nil {
		if !isFormError(err) {
			return err
		}
		formErrors(c, &f, err)
		return render(c, StatusFor(err), views.OrgForm(s.page(c, "val.org.new_title"), views.OrgFormVM{Form: f}))
	}
	flash(c, "val.flash.org_created")
	return c.Redirect(http.StatusSeeOther, "/organizations/"+strconv.FormatInt(o.ID, 10))
}

func (s *Server) orgEdit(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	o, _, err := s.Validation.Org(c.Request().Context(), u.AccountID, id)
	if err != nil {
		return err
	}
	if !validation.Editable(o, s.Clock.Now()) {
		flash(c, "val.org.not_editable")
		return c.Redirect(http.StatusSeeOther, "/organizations/"+strconv.FormatInt(id, 10))
	}
	f := views.NewForm()
	f.Values = orgValues(o)
	return render(c, http.StatusOK, views.OrgForm(s.page(c, "val.org.edit_title"), views.OrgFormVM{ID: id, Form: f}))
}

func (s *Server) orgUpdate(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	f := views.NewForm()
	f.Values = formValues(c, orgFormFields...)
	if err := s.Validation.UpdateOrg(c.Request().Context(), actorOf(c), u.AccountID, id, orgInput(f.Values)); err != nil {
		if !isFormError(err) {
			return err
		}
		formErrors(c, &f, err)
		return render(c, StatusFor(err), views.OrgForm(s.page(c, "val.org.edit_title"), views.OrgFormVM{ID: id, Form: f}))
	}
	flash(c, "val.flash.org_saved")
	return c.Redirect(http.StatusSeeOther, "/organizations/"+strconv.FormatInt(id, 10))
}

func (s *Server) orgSubmit(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	if err := s.Validation.SubmitOrg(c.Request().Context(), actorOf(c), u.AccountID, id, localizer(c).Lang); err != nil {
		if portal.ErrorCode(err) != portal.EConflict {
			return err
		}
		flash(c, "val.org.not_submittable")
		return c.Redirect(http.StatusSeeOther, "/organizations/"+strconv.FormatInt(id, 10))
	}
	s.Mail.Wake()
	flash(c, "val.flash.org_submitted")
	return c.Redirect(http.StatusSeeOther, "/organizations/"+strconv.FormatInt(id, 10))
}

func (s *Server) orgPage(c echo.Context) error {
	return s.renderOrgPage(c, http.StatusOK, views.NewForm())
}

// orgPageVM builds the organization page's view model.
func (s *Server) orgPageVM(c echo.Context, o portal.Organization, code validation.OrgCode) (views.OrgPageVM, error) {
	l := localizer(c)
	u := currentUser(c)
	now := s.Clock.Now()
	st := o.State(now)
	vm := views.OrgPageVM{ID: o.ID, LegalName: o.LegalName, AssumedName: o.AssumedName, Address: o.Address, City: o.City,
		PostalCode: o.PostalCode, Country: o.Country, Phone: o.Phone, Registration: o.Registration,
		OrgContact:  views.ContactVM{Name: o.OrgContact.Name, Email: o.OrgContact.Email, Phone: o.OrgContact.Phone},
		TechContact: views.ContactVM{Name: o.TechContact.Name, Email: o.TechContact.Email, Phone: o.TechContact.Phone},
		Status:      l.T("org.status." + string(st)), StatusCls: orgStatusClass(st), StateKey: string(st),
		Submitted: fmtStamp(o.SubmittedAt), Validated: fmtStamp(o.ValidatedAt), Expires: fmtDate(o.ExpiresAt),
		ValidatedBy: o.ValidatedBy, RejectReason: o.RejectReason, OrderID: o.OrderID, IsAdmin: u != nil && u.IsAdmin()}
	vm.CanEdit = validation.Editable(o, now)
	vm.CanSubmit = vm.CanEdit
	if st == portal.OrgPending && code.ID != 0 && code.UsedAt.IsZero() && code.KilledAt.IsZero() {
		switch {
		case code.FailedAttempts >= validation.MaxOrgCodeAttempts:
			vm.CodeLocked = true
		case !now.Before(code.ExpiresAt):
			vm.CodeExpired = true
		default:
			vm.CodeOpen, vm.CodeExpires = true, fmtStamp(code.ExpiresAt)
		}
	}
	if u != nil && u.AccountID == o.AccountID {
		all, err := s.Validation.Domains(c.Request().Context(), o.AccountID)
		if err != nil {
			return vm, err
		}
		for _, d := range all {
			if d.OrganizationID == o.ID {
				ds := d.State(now)
				vm.Domains = append(vm.Domains, views.OrgDomainVM{ID: d.ID, Name: d.Name, Status: l.T("val.domain.status." + string(ds)),
					StatusCls: domainStatusClass(ds)})
			}
		}
	}
	return vm, nil
}

func (s *Server) renderOrgPage(c echo.Context, status int, codeForm views.Form) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	o, code, err := s.Validation.Org(c.Request().Context(), u.AccountID, id)
	if err != nil {
		return err
	}
	vm, err := s.orgPageVM(c, o, code)
	if err != nil {
		return err
	}
	vm.CodeForm = codeForm
	return render(c, status, views.OrgPage(s.page(c, "val.orgs.title"), vm))
}

func (s *Server) orgCode(c echo.Context) error {
	u := currentUser(c)
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	code := c.FormValue("code")
	if err := s.Validation.EnterCode(c.Request().Context(), actorOf(c), u.AccountID, id, code); err != nil {
		if !isFormError(err) {
			return err
		}
		f := views.NewForm()
		f.Values["code"] = code
		formErrors(c, &f, err)
		if f.Error != "" && f.Errors["code"] == "" {
			f.Errors["code"], f.Error = f.Error, ""
		}
		return s.renderOrgPage(c, StatusFor(err), f)
	}
	s.Mail.Wake()
	flash(c, "val.flash.org_validated")
	return c.Redirect(http.StatusSeeOther, "/organizations/"+strconv.FormatInt(id, 10))
}
