package e2e

import (
	"testing"

	"certdesk/e2e/harness"
)

// axe-core finds no moderate, serious or critical violation on the pages
// an account administrator and CA staff use (the sign-in page, the
// dashboard, the KeyGen and certificate pages are checked by their own
// suites).
func TestAccessibilityOfMainPages(t *testing.T) {
	srv := harness.StartServer(t, harness.ServerOptions{Env: []string{"CERTDESK_DNS_RESOLVER=127.0.0.1:1"}})
	admin, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, admin, srv, harness.RoleAccountAdmin)
	for _, p := range []string{"/orders/new", "/orders", "/certificates", "/organizations", "/organizations/new", "/domains", "/account", "/account/deposit", "/ca"} {
		harness.Goto(t, admin, p)
		if vs := harness.AtLeast(harness.Axe(t, admin), "moderate"); len(vs) > 0 {
			t.Errorf("%s: %s", p, harness.FormatViolations(vs))
		}
	}
	staff, _ := harness.NewPage(t, srv)
	harness.SignInAs(t, staff, srv, harness.RoleCAAdmin)
	for _, p := range []string{"/staff/queue", "/staff/audit", "/staff/certificates/held", "/dev/mailbox"} {
		harness.Goto(t, staff, p)
		if vs := harness.AtLeast(harness.Axe(t, staff), "moderate"); len(vs) > 0 {
			t.Errorf("%s: %s", p, harness.FormatViolations(vs))
		}
	}
}
