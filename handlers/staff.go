package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"certdesk/internal/i18n"
	"certdesk/internal/portal"
	"certdesk/internal/validation"
	"certdesk/views"
)

// CA staff pages: the organization-validation queue (validation agents and
// CA administrators) and the audit log (CA administrators).
func init() {
	registerRoutes(func(s *Server) {
		e := s.Echo
		staff := requireRole(portal.RoleValidationAgent, portal.RoleCAAdmin)
		e.GET("/staff/queue", s.staffQueue, s.requireUser, staff)
		e.GET("/staff/organizations/:id", s.staffOrg, s.requireUser, staff)
		e.POST("/staff/organizations/:id/call-completed", s.staffCallCompleted, s.requireUser, staff)
		e.POST("/staff/organizations/:id/left-message", s.staffLeftMessage, s.requireUser, staff)
		e.POST("/staff/organizations/:id/reject", s.staffReject, s.requireUser, staff)
		e.GET("/staff/audit", s.staffAudit, s.requireUser, requireRole(portal.RoleCAAdmin))
	})
}

// describeCode describes an organization's latest voicemail code for staff.
func (s *Server) describeCode(l *i18n.Localizer, c validation.OrgCode) string {
	now := s.Clock.Now()
	switch {
	case c.ID == 0:
		return ""
	case !c.UsedAt.IsZero():
		return l.T("val.code_state.used", map[string]any{"At": fmtStamp(c.UsedAt)})
	case !c.KilledAt.IsZero():
		return ""
	case c.FailedAttempts >= validation.MaxOrgCodeAttempts:
		return l.T("val.code_state.locked")
	case !now.Before(c.ExpiresAt):
		return l.T("val.code_state.expired", map[string]any{"At": fmtStamp(c.ExpiresAt)})
	}
	return l.T("val.code_state.open", map[string]any{"At": fmtStamp(c.CreatedAt), "By": c.CreatedBy,
		"Expires": fmtStamp(c.ExpiresAt), "N": c.FailedAttempts})
}

func (s *Server) staffQueue(c echo.Context) error {
	l := localizer(c)
	items, err := s.Validation.Queue(c.Request().Context())
	if err != nil {
		return err
	}
	var vm views.QueueVM
	for _, it := range items {
		vm.Rows = append(vm.Rows, views.QueueRowVM{ID: it.Org.ID, Org: it.Org.LegalName, Account: it.AccountName, Country: it.Org.Country,
			Phone: it.Org.Phone, Submitted: fmtStamp(it.Org.SubmittedAt), OrderID: it.Org.OrderID, CodeState: s.describeCode(l, it.Code)})
	}
	return render(c, http.StatusOK, views.Queue(s.page(c, "val.queue.title"), vm))
}

// staffOrgVM builds the agent's view of one organization.
func (s *Server) staffOrgVM(c echo.Context, id int64) (views.StaffOrgVM, error) {
	it, err := s.Validation.StaffOrg(c.Request().Context(), id)
	if err != nil {
		return views.StaffOrgVM{}, err
	}
	org, err := s.orgPageVM(c, it.Org, it.Code)
	if err != nil {
		return views.StaffOrgVM{}, err
	}
	return views.StaffOrgVM{ID: id, Org: org, Account: it.AccountName, Pending: it.Org.Status == portal.OrgPending,
		CodeState: s.describeCode(localizer(c), it.Code), Form: views.NewForm(), Callback: s.Validation.CallbackPhone}, nil
}

func (s *Server) staffOrg(c echo.Context) error {
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	vm, err := s.staffOrgVM(c, id)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.StaffOrg(s.page(c, "val.queue.title"), vm))
}

// staffActionError re-renders the agent's page with an error.
func (s *Server) staffActionError(c echo.Context, id int64, err error, f views.Form) error {
	if !isFormError(err) {
		return err
	}
	vm, verr := s.staffOrgVM(c, id)
	if verr != nil {
		return verr
	}
	formErrors(c, &f, err)
	vm.Form, vm.ActionError = f, f.Error
	return render(c, StatusFor(err), views.StaffOrg(s.page(c, "val.queue.title"), vm))
}

func (s *Server) staffCallCompleted(c echo.Context) error {
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	f := views.NewForm()
	f.Values = formValues(c, "notes")
	if err := s.Validation.CallCompleted(c.Request().Context(), actorOf(c), id, f.Values["notes"]); err != nil {
		return s.staffActionError(c, id, err, f)
	}
	s.Mail.Wake()
	flash(c, "val.flash.call_completed")
	return c.Redirect(http.StatusSeeOther, "/staff/organizations/"+strconv.FormatInt(id, 10))
}

// staffLeftMessage makes a code and shows it once, in this response (never
// in a URL or the session), so the agent can read it onto the voicemail.
func (s *Server) staffLeftMessage(c echo.Context) error {
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	f := views.NewForm()
	f.Values = formValues(c, "notes")
	code, exp, err := s.Validation.LeftMessage(c.Request().Context(), actorOf(c), id, f.Values["notes"])
	if err != nil {
		return s.staffActionError(c, id, err, f)
	}
	s.Mail.Wake()
	vm, err := s.staffOrgVM(c, id)
	if err != nil {
		return err
	}
	vm.NewCode, vm.NewCodeExp = code, fmtStamp(exp)
	return render(c, http.StatusOK, views.StaffOrg(s.page(c, "val.queue.title"), vm))
}

func (s *Server) staffReject(c echo.Context) error {
	id, err := parseID(c, "id")
	if err != nil {
		return err
	}
	f := views.NewForm()
	f.Values = formValues(c, "reason", "notes")
	if err := s.Validation.Reject(c.Request().Context(), actorOf(c), id, f.Values["reason"], f.Values["notes"]); err != nil {
		return s.staffActionError(c, id, err, f)
	}
	s.Mail.Wake()
	flash(c, "val.flash.rejected")
	return c.Redirect(http.StatusSeeOther, "/staff/organizations/"+strconv.FormatInt(id, 10))
}

const auditPageSize = 50

func (s *Server) staffAudit(c echo.Context) error {
	ctx := c.Request().Context()
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	if offset < 0 || offset > 1_000_000 {
		offset = 0
	}
	rows, err := s.DB.ListAudit(ctx, auditPageSize+1, offset)
	if err != nil {
		return err
	}
	vm := views.AuditVM{HasPrev: offset > 0, Prev: max(0, offset-auditPageSize), Next: offset + auditPageSize}
	if len(rows) > auditPageSize {
		rows, vm.HasNext = rows[:auditPageSize], true
	}
	names := map[int64]string{}
	for _, r := range rows {
		acct := ""
		if r.AccountID != 0 {
			if n, ok := names[r.AccountID]; ok {
				acct = n
			} else if a, err := s.DB.AccountByID(ctx, r.AccountID); err == nil {
				acct, names[r.AccountID] = a.Name, a.Name
			}
		}
		obj := r.ObjectType
		if r.ObjectID != 0 {
			obj += " " + strconv.FormatInt(r.ObjectID, 10)
		}
		at := r.At
		if len(at) >= 19 {
			at = at[:10] + " " + at[11:19] + " UTC"
		}
		vm.Rows = append(vm.Rows, views.AuditRowVM{At: at, Actor: r.Actor, IP: r.IP, Action: r.Action, Object: obj, Account: acct, Detail: r.Detail})
	}
	return render(c, http.StatusOK, views.AuditLog(s.page(c, "val.audit.title"), vm))
}
