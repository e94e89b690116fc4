package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"certdesk/internal/portal"
	"certdesk/internal/validation"
)

// Adding a domain: errors beside the field with the value kept; the page
// says exactly what to publish; "Check now" shows what was found and what
// was expected; checks are rate limited per domain (429 with a message).
func TestDomainPagesAddAndCheck(t *testing.T) {
	e := newValEnv(t)
	e.svc.Limiter = validation.NewLimiter(1, 60e9, 1)
	c, _ := e.signedIn("admin@acme.test", portal.RoleAccountAdmin, "Acme")
	mustContain(t, c.get("/domains").body, "No domains yet", "Add an organization first")
	path := addOrg(t, c)
	org := strings.TrimPrefix(path, "/organizations/")

	r := c.post("/domains", "/domains", url.Values{"organization": {org}, "domain": {"not a domain"}, "method": {"dns_txt"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad domain: %d", r.status)
	}
	mustContain(t, r.body, `id="domain-error"`, "Enter a domain name", `value="not a domain"`)
	r = c.post("/domains", "/domains", url.Values{"organization": {org}, "domain": {"acme.test"}, "method": {"carrier pigeon"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad method: %d", r.status)
	}
	mustContain(t, r.body, "Choose how to demonstrate control")

	r = c.post("/domains", "/domains", url.Values{"organization": {org}, "domain": {"acme.test"}, "method": {"dns_txt"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	dpath := r.header.Get("Location")
	ds, _ := e.svc.Domains(t.Context(), 1)
	value := ds[0].RandomValue
	mustContain(t, c.get(dpath).body, "_dnsauth.acme.test", value, "Check now")

	r = c.post(dpath, dpath+"/check", nil)
	if r.status != http.StatusOK {
		t.Fatalf("check: %d", r.status)
	}
	mustContain(t, r.body, `id="check-result"`, "Not found yet.", "No TXT records found", "Expected", value)
	r = c.post(dpath, dpath+"/check", nil)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("second check within the minute: %d", r.status)
	}
	mustContain(t, r.body, `id="check-error"`, "Too many checks for this domain")
	// the last result is still shown on the page
	mustContain(t, c.get(dpath).body, "No TXT records found")

	// the email method lists the constructed addresses and mails them
	r = c.post(dpath, dpath+"/method", url.Values{"method": {"email"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("method: %d", r.status)
	}
	mustContain(t, c.get(dpath).body, "admin@acme.test", "postmaster@acme.test")
	if m, err := e.db.LatestOutboxTo(t.Context(), "hostmaster@acme.test", validation.KindDomainApproval); err != nil || m.ID == 0 {
		t.Fatalf("no approval email to hostmaster@: %v", err)
	}
	// plain users see domains but cannot check
	u, _ := e.signedIn("user@acme.test", portal.RoleUser, "Acme")
	if r := u.get(dpath); r.status != http.StatusOK {
		t.Fatalf("user view: %d", r.status)
	}
	if r := u.post(dpath, dpath+"/check", nil); r.status != http.StatusForbidden {
		t.Fatalf("user check: %d", r.status)
	}
}
