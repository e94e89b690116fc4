package handlers

import (
	"html"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"certdesk/internal/mail"
	"certdesk/internal/portal"
	"certdesk/internal/validation"
)

// valEnv is the handler test server with the validation service wired,
// its DNS pointed at a 127.0.0.1 server that answers NXDOMAIN to every
// question (no packet leaves the machine).
type valEnv struct {
	*testEnv
	svc *validation.Service
}

func newValEnv(t *testing.T) *valEnv {
	t.Helper()
	e := newTestEnv(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	checker, err := validation.New(validation.Config{Resolver: pc.LocalAddr().String(), DNSTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	svc := &validation.Service{Store: e.db, Checker: checker, Limiter: validation.NewLimiter(0, 0, 0), Clock: e.clock,
		Compose: func(lang, subject string, body []string, data map[string]any, links []validation.MailLink) (portal.Email, error) {
			ml := make([]mail.Link, len(links))
			for i, l := range links {
				ml[i] = mail.Link{Label: l.Label, URL: l.URL}
			}
			return mail.Compose(lang, subject, body, data, ml)
		}, BaseURL: e.http.URL}
	e.srv.Validation = svc
	return &valEnv{testEnv: e, svc: svc}
}

// signedIn adds a user and returns a signed-in client.
func (e *valEnv) signedIn(email string, role portal.Role, account string) (*client, portal.User) {
	e.t.Helper()
	u, pw := e.addUser(email, role, account)
	c := e.client()
	c.signIn(email, pw)
	return c, u
}

var orgForm = url.Values{"legal_name": {"Acme B.V."}, "address": {"Damrak 1"}, "city": {"Amsterdam"}, "postal_code": {"1012 LG"},
	"country": {"NL"}, "phone": {"+31 20 555 0100"}, "org_contact_name": {"Olga Org"}, "org_contact_email": {"olga@acme.test"},
	"tech_contact_name": {"Tom Tech"}, "tech_contact_email": {"tom@acme.test"}}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// addOrg creates an organization through the form and returns its path.
func addOrg(t *testing.T, c *client) string {
	t.Helper()
	r := c.post("/organizations/new", "/organizations/new", cloneForm(orgForm))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), "/organizations/") {
		t.Fatalf("add organization: %d %s", r.status, r.body)
	}
	return r.header.Get("Location")
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	text := html.UnescapeString(body)
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Fatalf("page lacks %q", w)
		}
	}
}

// The administrator adds an organization (errors beside fields, values
// kept, 422), sees it as a draft, and submits it for prevalidation.
func TestOrgPagesAddAndSubmit(t *testing.T) {
	e := newValEnv(t)
	c, _ := e.signedIn("admin@acme.test", portal.RoleAccountAdmin, "Acme")
	mustContain(t, c.get("/organizations").body, "No organizations yet")

	bad := cloneForm(orgForm)
	bad.Set("country", "Holland")
	bad.Set("phone", "020-5550100")
	bad.Del("legal_name")
	r := c.post("/organizations/new", "/organizations/new", bad)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("bad form: %d", r.status)
	}
	mustContain(t, r.body, `id="country-error"`, "two-letter country code", `id="phone-error"`, "international format",
		`id="legal_name-error"`, "This field is required", `value="Holland"`, `value="olga@acme.test"`)

	path := addOrg(t, c)
	r = c.get(path)
	mustContain(t, r.body, "Acme B.V.", "not yet submitted", "Submit for prevalidation")
	r = c.post(path, path+"/submit", nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("submit: %d", r.status)
	}
	r = c.get(path)
	mustContain(t, r.body, "validation pending", "Waiting for our call to +31 20 555 0100")
	if strings.Contains(r.body, `id="edit-org"`) {
		t.Error("a pending organization can still be edited")
	}
	// a plain user of the account sees it but may not change it
	u, _ := e.signedIn("user@acme.test", portal.RoleUser, "Acme")
	if r := u.get(path); r.status != http.StatusOK {
		t.Fatalf("user view: %d", r.status)
	}
	if r := u.get("/organizations/new"); r.status != http.StatusForbidden {
		t.Fatalf("user add form: %d", r.status)
	}
}

// Another account's organizations and domains are 404, for every action.
func TestOrgAndDomainOtherAccount404(t *testing.T) {
	e := newValEnv(t)
	c, _ := e.signedIn("admin@acme.test", portal.RoleAccountAdmin, "Acme")
	path := addOrg(t, c)
	r := c.post("/domains", "/domains", url.Values{"organization": {strings.TrimPrefix(path, "/organizations/")}, "domain": {"acme.test"},
		"method": {"dns_txt"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("add domain: %d %s", r.status, r.body)
	}
	dpath := r.header.Get("Location")

	x, _ := e.signedIn("admin@other.test", portal.RoleAccountAdmin, "Other")
	for _, p := range []string{path, path + "/edit", dpath} {
		if r := x.get(p); r.status != http.StatusNotFound {
			t.Errorf("GET %s by another account: %d", p, r.status)
		}
	}
	for _, p := range []string{path + "/edit", path + "/submit", path + "/code", dpath + "/check", dpath + "/method"} {
		form := cloneForm(orgForm)
		form.Set("code", "ABCD-EFGH")
		form.Set("method", "http")
		if r := x.post("/organizations", p, form); r.status != http.StatusNotFound {
			t.Errorf("POST %s by another account: %d", p, r.status)
		}
	}
	r = x.post("/domains", "/domains", url.Values{"organization": {strings.TrimPrefix(path, "/organizations/")}, "domain": {"x.test"}, "method": {"dns_txt"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Errorf("adding a domain to another account's organization: %d", r.status)
	}
	if body := x.get("/organizations").body; strings.Contains(body, "Acme B.V.") {
		t.Error("another account lists the organization")
	}
	if body := x.get("/domains").body; strings.Contains(body, "acme.test") {
		t.Error("another account lists the domain")
	}
}

var codeRe = regexp.MustCompile(`id="new-code">([A-Z0-9-]+)<`)

// Agent: queue, "left a message" shows the code once; the customer enters
// a wrong code (error beside the field, 422), then the right one; the page
// shows the organization validated until 825 days on. Roles are enforced
// and the CA administrator reads the audit log.
func TestStaffQueueAndCode(t *testing.T) {
	e := newValEnv(t)
	c, _ := e.signedIn("admin@acme.test", portal.RoleAccountAdmin, "Acme")
	path := addOrg(t, c)
	c.post(path, path+"/submit", nil)
	id := strings.TrimPrefix(path, "/organizations/")

	if r := c.get("/staff/queue"); r.status != http.StatusForbidden {
		t.Fatalf("customer on the queue: %d", r.status)
	}
	agent, _ := e.signedIn("agent@ca.test", portal.RoleValidationAgent, "")
	mustContain(t, agent.get("/staff/queue").body, "Acme B.V.", "+31 20 555 0100", "Acme")
	spath := "/staff/organizations/" + id
	mustContain(t, agent.get(spath).body, "Olga Org", "olga@acme.test", "Call completed, consent given")

	r := agent.post(spath, spath+"/reject", url.Values{"reason": {""}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("reject without reason: %d", r.status)
	}
	mustContain(t, r.body, `id="reason-error"`)

	r = agent.post(spath, spath+"/left-message", url.Values{"notes": {"reception voicemail"}})
	m := codeRe.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("left message: %d, no code shown", r.status)
	}
	code := m[1]
	if strings.Contains(agent.get(spath).body, code) {
		t.Fatal("the code is shown again after the first response")
	}

	page := c.get(path)
	mustContain(t, page.body, "We left a message with a verification code")
	r = c.post(path, path+"/code", url.Values{"code": {"WRONG-CODE"}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("wrong code: %d", r.status)
	}
	mustContain(t, r.body, `id="code-error"`, "That code is not correct. 4 attempts left.", `value="WRONG-CODE"`)
	r = c.post(path, path+"/code", url.Values{"code": {strings.ToLower(code)}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("right code: %d %s", r.status, r.body)
	}
	want := e.clock.Now().Add(825 * 24 * time.Hour).Format("2006-01-02")
	mustContain(t, c.get(path).body, `id="org-status">validated<`, "valid until "+want)

	if r := agent.get("/staff/audit"); r.status != http.StatusForbidden {
		t.Fatalf("agent on the audit log: %d", r.status)
	}
	ca, _ := e.signedIn("ca@ca.test", portal.RoleCAAdmin, "")
	mustContain(t, ca.get("/staff/audit").body, "org.message_left", "agent@ca.test", "org.code_wrong", "org.code_accepted", "127.0.0.1")
}

func TestOrgDutchPage(t *testing.T) {
	e := newValEnv(t)
	c, _ := e.signedIn("admin@acme.test", portal.RoleAccountAdmin, "Acme")
	c.get("/lang/nl?next=/organizations")
	mustContain(t, c.get("/organizations").body, "Nog geen organisaties", "Organisatie toevoegen")
	mustContain(t, c.get("/organizations/new").body, "Statutaire naam", "Geverifieerd telefoonnummer")
}
