package handlers

import (
	"encoding/pem"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"certdesk/internal/ca"
	"certdesk/internal/i18n"
	"certdesk/internal/portal"
	"certdesk/store"
	"certdesk/views"
)

// Certificates of an account: list, detail, downloads (PEM, DER, PKCS#7
// chain), revocation by the requestor or an account administrator; the
// JSON API's download and revoke; and, for CA staff, the issuances the CA
// refused with their lint names.
func init() {
	registerRoutes(func(s *Server) {
		e := s.Echo
		e.GET("/certificates", s.certList, s.requireUser, requireCustomer)
		e.GET("/certificates/:id", s.certPage, s.requireUser, requireCustomer)
		e.GET("/certificates/:id/download/:format", s.certDownload, s.requireUser, requireCustomer)
		e.POST("/certificates/:id/revoke", s.certRevoke, s.requireUser, requireCustomer)
		e.GET("/staff/certificates/held", s.staffHeld, s.requireUser, requireRole(portal.RoleValidationAgent, portal.RoleCAAdmin))

		e.GET("/api/v1/certificate/:id", s.apiCertGet, s.requireAPIKey)
		e.GET("/api/v1/certificate/:id/download/format/:format", s.certDownload, s.requireAPIKey)
		e.PUT("/api/v1/certificate/:id/revoke", s.apiCertRevoke, s.requireAPIKey)
	})
}

const certsPerPage = 50

func certStatusClass(st string) string {
	switch st {
	case "issued":
		return "ok"
	case "revoked":
		return "bad"
	}
	return "warn"
}

// certStatus is the status shown: an issued certificate past its notAfter
// is "expired".
func (s *Server) certStatus(c store.CertificateRow) string {
	if c.Status == "issued" && !s.Clock.Now().Before(c.NotAfter) {
		return "expired"
	}
	return c.Status
}

// loadCert loads the caller's account's certificate; any other id is 404.
func (s *Server) loadCert(c echo.Context) (store.CertificateRow, error) {
	id, err := parseID(c, "id")
	if err != nil {
		return store.CertificateRow{}, err
	}
	if s.Certs == nil {
		return store.CertificateRow{}, portal.Errorf(portal.ENotFound, "not found")
	}
	return s.DB.Certificate(c.Request().Context(), nil, currentUser(c).AccountID, id)
}

func (s *Server) certList(c echo.Context) error {
	u := currentUser(c)
	l := localizer(c)
	offset, _ := strconv.Atoi(c.QueryParam("offset"))
	offset = max(offset, 0)
	rows, total, err := s.DB.ListCertificates(c.Request().Context(), u.AccountID, certsPerPage, offset)
	if err != nil {
		return err
	}
	if len(rows) == 0 && offset > 0 && total > 0 {
		// Past the end (an old bookmark, an edited URL): the last page,
		// not "No certificates yet".
		offset = (total - 1) / certsPerPage * certsPerPage
		if rows, total, err = s.DB.ListCertificates(c.Request().Context(), u.AccountID, certsPerPage, offset); err != nil {
			return err
		}
	}
	vm := views.CertListVM{Total: total, PrevOffset: -1, NextOffset: -1}
	if offset > 0 {
		vm.PrevOffset = max(offset-certsPerPage, 0)
	}
	if offset+certsPerPage < total {
		vm.NextOffset = offset + certsPerPage
	}
	for _, r := range rows {
		st := s.certStatus(r)
		vm.Certs = append(vm.Certs, views.CertRowVM{ID: r.ID, Subject: r.Subject, Emails: strings.Join(r.Emails, ", "),
			Serial: r.Serial, NotAfter: r.NotAfter.UTC().Format(dateTime), Status: l.T("certs.status." + st), StatusCls: certStatusClass(st)})
	}
	return render(c, http.StatusOK, views.CertificateList(s.page(c, "certs.title"), vm))
}

// mayRevoke: the requestor who ordered it or an account administrator
// (SBR 4.9.2: the Subscriber may request revocation).
func (s *Server) mayRevoke(c echo.Context, cert store.CertificateRow) (bool, error) {
	u := currentUser(c)
	if u.IsAdmin() {
		return true, nil
	}
	o, err := s.DB.Order(c.Request().Context(), nil, u.AccountID, cert.OrderID)
	if err != nil {
		return false, err
	}
	return o.UserID == u.ID, nil
}

// customerReasons are the reasons a subscriber may give (SBR 4.9.1.1);
// privilegeWithdrawn is the CA's own finding (SBR 7.2.2) and is not offered.
func customerReasons() []ca.RevocationReason {
	var out []ca.RevocationReason
	for _, r := range ca.RevocationReasons {
		if r.Code != 9 {
			out = append(out, r)
		}
	}
	return out
}

func reasonByName(name string) (int, bool) {
	for _, r := range customerReasons() {
		if r.Name == name {
			return r.Code, true
		}
	}
	return 0, false
}

// storedProfile is the profile as the issuance pipeline stores it
// (ordering.ProfileName): "mailbox-validated strict (2.23.140.1.5.1.3)".
var storedProfile = regexp.MustCompile(`^(mailbox|organization|sponsor)-validated (strict|multipurpose) \(([0-9.]+)\)$`)

// profileLabel shows a stored profile in the page's language (SBR type
// and generation translated, the policy OID kept); another form is shown
// as stored.
func profileLabel(l *i18n.Localizer, stored string) string {
	m := storedProfile.FindStringSubmatch(stored)
	if m == nil {
		return stored
	}
	return l.T("certs.profile_name", map[string]any{"Type": l.T("certs.type." + m[1]),
		"Generation": l.T("certs.generation." + m[2]), "OID": m[3]})
}

func (s *Server) certPage(c echo.Context) error {
	cert, err := s.loadCert(c)
	if err != nil {
		return err
	}
	return s.renderCertPage(c, http.StatusOK, cert, views.NewForm())
}

func (s *Server) renderCertPage(c echo.Context, status int, cert store.CertificateRow, f views.Form) error {
	l := localizer(c)
	st := s.certStatus(cert)
	vm := views.CertDetailVM{ID: cert.ID, OrderID: cert.OrderID, Subject: cert.Subject, Emails: cert.Emails, Serial: cert.Serial,
		NotBefore: cert.NotBefore.UTC().Format(dateTime), NotAfter: cert.NotAfter.UTC().Format(dateTime),
		Fingerprint: Fingerprint(cert.DER), Profile: profileLabel(l, cert.Profile), Status: l.T("certs.status." + st),
		StatusCls: certStatusClass(st), Revoked: cert.Status == "revoked", Form: f}
	if vm.Revoked {
		vm.RevokedAt = cert.RevokedAt.UTC().Format(dateTime)
		vm.Reason = l.T("certs.reason." + ca.ReasonName(cert.RevocationReason))
	}
	if cert.Status == "issued" {
		ok, err := s.mayRevoke(c, cert)
		if err != nil {
			return err
		}
		vm.CanRevoke = ok
	}
	for _, r := range customerReasons() {
		vm.Reasons = append(vm.Reasons, views.Option{Value: r.Name, Label: l.T("certs.reason." + r.Name)})
	}
	return render(c, status, views.CertificatePage(s.page(c, "certs.detail_title"), vm))
}

func (s *Server) certDownload(c echo.Context) error {
	cert, err := s.loadCert(c)
	if err != nil {
		return err
	}
	name := "certificate-" + strings.ToLower(cert.Serial)
	var body []byte
	var ct string
	switch c.Param("format") {
	case "pem":
		body, ct, name = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.DER}), "application/x-pem-file", name+".pem"
	case "der":
		body, ct, name = cert.DER, "application/pkix-cert", name+".cer"
	case "p7b":
		if s.CA == nil {
			return portal.Errorf(portal.ENotFound, "not found")
		}
		if body, err = ca.PKCS7Chain(append([][]byte{cert.DER}, s.CA.ChainDER()...)...); err != nil {
			return err
		}
		ct, name = "application/pkcs7-mime", name+".p7b"
	default:
		return portal.FieldError("format", "", "The format is pem, der or p7b.")
	}
	h := c.Response().Header()
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
	h.Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, ct, body)
}

func (s *Server) certRevoke(c echo.Context) error {
	cert, err := s.loadCert(c)
	if err != nil {
		return err
	}
	u := currentUser(c)
	if ok, err := s.mayRevoke(c, cert); err != nil {
		return err
	} else if !ok {
		return &portal.Error{Code: portal.EForbidden, Key: "certs.revoke_forbidden", Message: "Only the requestor or an account administrator can revoke this certificate."}
	}
	f := views.NewForm()
	f.Values["reason"] = c.FormValue("reason")
	code, ok := reasonByName(f.Values["reason"])
	if !ok {
		f.Errors["reason"] = localizer(c).T("certs.reason_invalid")
		return s.renderCertPage(c, http.StatusUnprocessableEntity, cert, f)
	}
	if err := s.revoke(c, u, cert, code); err != nil {
		if portal.ErrorCode(err) == portal.EConflict {
			flash(c, "certs.already_revoked")
			return c.Redirect(http.StatusSeeOther, "/certificates/"+strconv.FormatInt(cert.ID, 10))
		}
		return err
	}
	flash(c, "certs.revoked_flash")
	return c.Redirect(http.StatusSeeOther, "/certificates/"+strconv.FormatInt(cert.ID, 10))
}

func (s *Server) revoke(c echo.Context, u *portal.User, cert store.CertificateRow, code int) error {
	ctx := c.Request().Context()
	if err := s.Certs.Revoke(ctx, u.AccountID, cert.ID, code, u.Email); err != nil {
		return err
	}
	_ = s.DB.Audit(ctx, nil, auditFor(c, u, "certificate.revoked", "certificate", cert.ID, u.AccountID,
		"serial "+cert.Serial+", reason "+ca.ReasonName(code)))
	return nil
}

type apiCert struct {
	ID               int64    `json:"id"`
	OrderID          int64    `json:"order_id"`
	Status           string   `json:"status"`
	SerialNumber     string   `json:"serial_number"`
	Subject          string   `json:"subject"`
	Emails           []string `json:"emails"`
	ValidFrom        string   `json:"valid_from"`
	ValidTill        string   `json:"valid_till"`
	ThumbprintSHA256 string   `json:"thumbprint_sha256"`
	Profile          string   `json:"profile"`
	RevokedAt        string   `json:"revoked_at,omitempty"`
	RevocationReason string   `json:"revocation_reason,omitempty"`
}

func (s *Server) apiCertGet(c echo.Context) error {
	cert, err := s.loadCert(c)
	if err != nil {
		return err
	}
	a := apiCert{ID: cert.ID, OrderID: cert.OrderID, Status: s.certStatus(cert), SerialNumber: cert.Serial, Subject: cert.Subject,
		Emails: cert.Emails, ValidFrom: cert.NotBefore.UTC().Format(time.RFC3339), ValidTill: cert.NotAfter.UTC().Format(time.RFC3339),
		ThumbprintSHA256: strings.ToUpper(cert.FingerprintSHA), Profile: cert.Profile}
	if cert.Status == "revoked" {
		a.RevokedAt, a.RevocationReason = cert.RevokedAt.UTC().Format(time.RFC3339), ca.ReasonName(cert.RevocationReason)
	}
	return c.JSON(http.StatusOK, a)
}

func (s *Server) apiCertRevoke(c echo.Context) error {
	cert, err := s.loadCert(c)
	if err != nil {
		return err
	}
	var req struct {
		Reason   string `json:"reason"`
		Comments string `json:"comments"`
	}
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	code, ok := reasonByName(req.Reason)
	if !ok {
		names := make([]string, 0, 6)
		for _, r := range customerReasons() {
			names = append(names, r.Name)
		}
		return portal.FieldError("reason", "certs.reason_invalid", "reason must be one of: "+strings.Join(names, ", ")+".")
	}
	u := currentUser(c)
	if ok, err := s.mayRevoke(c, cert); err != nil {
		return err
	} else if !ok {
		return &portal.Error{Code: portal.EForbidden, Message: "Only the requestor or an account administrator can revoke this certificate."}
	}
	if err := s.revoke(c, u, cert, code); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) staffHeld(c echo.Context) error {
	rows, err := s.DB.HeldIssuances(c.Request().Context(), 200)
	if err != nil {
		return err
	}
	var vm []views.HeldRowVM
	isCAAdmin := currentUser(c).Role == portal.RoleCAAdmin
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.RecipientID
	}
	statuses, err := s.DB.RecipientStatuses(c.Request().Context(), ids)
	if err != nil {
		return err
	}
	for _, r := range rows {
		row := views.HeldRowVM{CertID: r.ID, RecipientID: r.RecipientID, OrderID: r.OrderID, AccountID: r.AccountID,
			Emails: strings.Join(r.Emails, ", "), Serial: r.Serial, Created: r.CreatedAt.UTC().Format(dateTime), Status: r.Status,
			Lints: strings.Join(r.LintFindings, ", "), Failure: r.Failure}
		row.Releasable = isCAAdmin && statuses[r.RecipientID] == string(portal.RecipientHeld)
		vm = append(vm, row)
	}
	return render(c, http.StatusOK, views.HeldIssuances(s.page(c, "certs.held_title"), vm))
}
