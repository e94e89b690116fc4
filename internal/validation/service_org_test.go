package validation_test

import (
	"strings"
	"testing"
	"time"

	"certdesk/internal/portal"
	"certdesk/internal/validation"
)

func TestOrgInputErrorsAllAtOnce(t *testing.T) {
	_, err := validation.CheckOrgInput(validation.OrgInput{Country: "XX", Phone: "020 555", OrgContact: portal.Contact{Email: "nope"},
		TechContact: portal.Contact{Name: "T", Email: "t@acme.test", Phone: "abc"}})
	fe := portal.AsFieldErrors(err)
	got := map[string]bool{}
	for _, e := range fe {
		got[e.Field] = true
	}
	for _, f := range []string{"legal_name", "address", "city", "country", "phone", "org_contact_name", "org_contact_email", "tech_contact_phone"} {
		if !got[f] {
			t.Errorf("no error for %s; got %v", f, got)
		}
	}
	if got["tech_contact_name"] || got["tech_contact_email"] {
		t.Errorf("valid fields flagged: %v", got)
	}
	in, err := validation.CheckOrgInput(goodOrg())
	if err != nil {
		t.Fatal(err)
	}
	if in.Country != "NL" || in.Phone != "+31 20 555 0100" {
		t.Errorf("normalized: %q %q", in.Country, in.Phone)
	}
	long := goodOrg()
	long.LegalName = strings.Repeat("a", 65) // X.520 organizationName: 64
	if _, err := validation.CheckOrgInput(long); portal.AsFieldErrors(err)[0].Field != "legal_name" {
		t.Errorf("65-character legal name: %v", err)
	}
}

// Submit -> call completed: validated for exactly 825 days; the contacts
// were told a call is coming and that it is done; ordering is asked to
// move recipients on; after 825 days the organization is expired and can
// be submitted again.
func TestOrgCallCompletedValid825Days(t *testing.T) {
	f := newFx(t, nil)
	o := f.pendingOrg()
	if got := f.getOrg(o.ID); got.Status != portal.OrgPending || !got.SubmittedAt.Equal(t0) {
		t.Fatalf("after submit: %s %v", got.Status, got.SubmittedAt)
	}
	notices := f.mailsOf(validation.KindOrgSubmitted)
	if len(notices) != 2 || notices[0].To != "olga@acme.test" || notices[1].To != "tom@acme.test" {
		t.Fatalf("call notices: %+v", notices)
	}
	if !strings.Contains(notices[0].Text, "+31 20 555 0100") {
		t.Errorf("notice does not name the number to be called:\n%s", notices[0].Text)
	}
	q, err := f.svc.Queue(f.ctx)
	if err != nil || len(q) != 1 || q[0].Org.ID != o.ID || q[0].AccountName != "Acme" {
		t.Fatalf("queue: %+v %v", q, err)
	}

	f.clock.Advance(time.Hour)
	agent := validation.Actor{UserID: 7, Email: "agent@certdesk.test", IP: "10.1.2.3"}
	if err := f.svc.CallCompleted(f.ctx, agent, o.ID, "spoke to Olga; number from KvK"); err != nil {
		t.Fatal(err)
	}
	got := f.getOrg(o.ID)
	validatedAt := t0.Add(time.Hour)
	if got.Status != portal.OrgValidated || !got.ValidatedAt.Equal(validatedAt) || !got.ExpiresAt.Equal(validatedAt.Add(825*24*time.Hour)) {
		t.Fatalf("validated: %s at %v expires %v", got.Status, got.ValidatedAt, got.ExpiresAt)
	}
	if got.ValidatedBy != "agent@certdesk.test" || got.Notes != "spoke to Olga; number from KvK" {
		t.Errorf("agent and notes not recorded: %q %q", got.ValidatedBy, got.Notes)
	}
	if f.adv.count(f.acct.ID) != 1 {
		t.Errorf("ordering advanced %d times, want 1", f.adv.count(f.acct.ID))
	}
	if len(f.mailsOf(validation.KindOrgValidated)) != 2 {
		t.Errorf("validated notices: %d", len(f.mailsOf(validation.KindOrgValidated)))
	}
	es, _ := f.db.ListAudit(f.ctx, 10, 0)
	if es[0].Action != validation.AuditOrgCallCompleted || es[0].Actor != "agent@certdesk.test" || es[0].IP != "10.1.2.3" {
		t.Errorf("audit: %+v", es[0])
	}
	if q, _ := f.svc.Queue(f.ctx); len(q) != 0 {
		t.Errorf("validated organization still queued")
	}
	// a second outcome for the same call is refused (another agent did it)
	wantCode(t, f.svc.CallCompleted(f.ctx, agent, o.ID, ""), portal.EConflict)
	wantCode(t, f.svc.SubmitOrg(f.ctx, f.admin, f.acct.ID, o.ID, "en"), portal.EConflict)
	wantCode(t, f.svc.UpdateOrg(f.ctx, f.admin, f.acct.ID, o.ID, goodOrg()), portal.EConflict)

	f.clock.Set(validatedAt.Add(825*24*time.Hour - time.Second))
	if !f.getOrg(o.ID).Current(f.clock.Now()) {
		t.Fatal("not current one second before 825 days")
	}
	f.clock.Set(validatedAt.Add(825 * 24 * time.Hour))
	if st := f.getOrg(o.ID).State(f.clock.Now()); st != portal.OrgExpired {
		t.Fatalf("after 825 days: %s", st)
	}
	// an expired organization can be corrected and submitted again
	in := goodOrg()
	in.AssumedName = "Acme"
	if err := f.svc.UpdateOrg(f.ctx, f.admin, f.acct.ID, o.ID, in); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SubmitOrg(f.ctx, f.admin, f.acct.ID, o.ID, "nl"); err != nil {
		t.Fatal(err)
	}
	if got := f.getOrg(o.ID); got.Status != portal.OrgPending || got.AssumedName != "Acme" || !got.ExpiresAt.IsZero() {
		t.Fatalf("resubmitted: %+v", got)
	}
	if n := f.mailsOf(validation.KindOrgSubmitted); !strings.Contains(n[len(n)-1].Subject, "bellen") {
		t.Errorf("resubmission notice not in the submitter's language (nl): %q", n[len(n)-1].Subject)
	}
}

// "Left a message": a readable code shown once to the agent, never emailed;
// the contact enters it (case, spaces and dashes do not matter); a wrong
// code is counted; the right one validates; the code is single-use.
func TestOrgVoicemailCode(t *testing.T) {
	f := newFx(t, nil)
	o := f.pendingOrg()
	agent := validation.Actor{UserID: 7, Email: "agent@certdesk.test", IP: "10.1.2.3"}
	code, exp, err := f.svc.LeftMessage(f.ctx, agent, o.ID, "voicemail of reception")
	if err != nil {
		t.Fatal(err)
	}
	if len(portal.NormalizeCode(code)) != validation.OrgCodeLength || !exp.Equal(t0.Add(7*24*time.Hour)) {
		t.Fatalf("code %q expires %v", code, exp)
	}
	msgs := f.mailsOf(validation.KindOrgMessageLeft)
	if len(msgs) != 2 {
		t.Fatalf("message-left emails: %d", len(msgs))
	}
	for _, m := range msgs {
		if strings.Contains(m.Text, code) || strings.Contains(m.Text, portal.NormalizeCode(code)) {
			t.Fatalf("the code is in the email to %s; it must only be on the voicemail", m.To)
		}
	}
	// only a hash is stored
	var n int
	_ = f.db.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM org_codes WHERE code_hash LIKE '%'||?||'%' OR code_hash LIKE '%'||?||'%'`,
		code, portal.NormalizeCode(code)).Scan(&n)
	if n != 0 {
		t.Fatal("the code is stored in clear")
	}

	err = f.svc.EnterCode(f.ctx, f.admin, f.acct.ID, o.ID, "AAAA-AAAA-AAAA-AAAA")
	wantCode(t, err, portal.EInvalid)
	if pe := portal.AsFieldErrors(err)[0]; pe.Field != "code" || pe.Key != "val.code.wrong" || pe.Data["N"] != 4 {
		t.Fatalf("wrong code error: %+v", pe)
	}
	if f.getOrg(o.ID).Status != portal.OrgPending {
		t.Fatal("a wrong code changed the state")
	}
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	if err := f.svc.EnterCode(f.ctx, f.admin, f.acct.ID, o.ID, typed); err != nil {
		t.Fatalf("right code (typed %q): %v", typed, err)
	}
	got := f.getOrg(o.ID)
	if got.Status != portal.OrgValidated || !got.ExpiresAt.Equal(t0.Add(825*24*time.Hour)) {
		t.Fatalf("after code: %s %v", got.Status, got.ExpiresAt)
	}
	if f.adv.count(f.acct.ID) != 1 {
		t.Error("ordering not advanced after the code")
	}
	wantCode(t, f.svc.EnterCode(f.ctx, f.admin, f.acct.ID, o.ID, code), portal.EConflict)
	acts := f.auditActions()
	for _, a := range []string{"org.message_left", "org.code_wrong", "org.code_accepted"} {
		if !hasAudit(acts, a) {
			t.Errorf("audit lacks %s: %v", a, acts)
		}
	}
}

// The code expires after 7 days (portal.OrgCodeLifetime).
func TestOrgCodeExpiresAfter7Days(t *testing.T) {
	f := newFx(t, nil)
	agent := validation.Actor{Email: "agent@certdesk.test"}
	a, b := f.pendingOrg(), f.pendingOrg()
	codeA, _, err := f.svc.LeftMessage(f.ctx, agent, a.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	codeB, _, err := f.svc.LeftMessage(f.ctx, agent, b.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(7*24*time.Hour - time.Minute))
	if err := f.svc.EnterCode(f.ctx, f.admin, f.acct.ID, a.ID, codeA); err != nil {
		t.Fatalf("a minute before 7 days: %v", err)
	}
	f.clock.Set(t0.Add(7 * 24 * time.Hour))
	err = f.svc.EnterCode(f.ctx, f.admin, f.acct.ID, b.ID, codeB)
	wantCode(t, err, portal.EInvalid)
	if k := portal.AsFieldErrors(err)[0].Key; k != "val.code.expired" {
		t.Fatalf("expired code: %s", k)
	}
	// a new message makes a new code; the old one is dead
	codeB2, _, err := f.svc.LeftMessage(f.ctx, agent, b.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.EnterCode(f.ctx, f.admin, f.acct.ID, b.ID, codeB); portal.ErrorCode(err) != portal.EInvalid {
		t.Fatalf("old code after a new message: %v", err)
	}
	if err := f.svc.EnterCode(f.ctx, f.admin, f.acct.ID, b.ID, codeB2); err != nil {
		t.Fatal(err)
	}
}

// Wrong codes are limited: the fifth wrong code voids the code, and then
// even the right one is refused until the agent leaves a new message.
func TestOrgWrongCodeLimit(t *testing.T) {
	f := newFx(t, nil)
	o := f.pendingOrg()
	code, _, err := f.svc.LeftMessage(f.ctx, validation.Actor{Email: "agent@certdesk.test"}, o.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= validation.MaxOrgCodeAttempts; i++ {
		err := f.svc.EnterCode(f.ctx, f.admin, f.acct.ID, o.ID, "WRONG-WRONG")
		want := portal.EInvalid
		if i == validation.MaxOrgCodeAttempts {
			want = portal.ETooMany
		}
		wantCode(t, err, want)
	}
	err = f.svc.EnterCode(f.ctx, f.admin, f.acct.ID, o.ID, code)
	wantCode(t, err, portal.ETooMany)
	if f.getOrg(o.ID).Status != portal.OrgPending {
		t.Fatal("validated with a voided code")
	}
	q, _ := f.svc.Queue(f.ctx)
	if len(q) != 1 || q[0].Code.FailedAttempts != validation.MaxOrgCodeAttempts {
		t.Fatalf("queue does not show the voided code: %+v", q)
	}
}

func TestOrgRejectEmailsReason(t *testing.T) {
	f := newFx(t, nil)
	o := f.pendingOrg()
	agent := validation.Actor{Email: "agent@certdesk.test"}
	err := f.svc.Reject(f.ctx, agent, o.ID, "  ", "")
	wantCode(t, err, portal.EInvalid)
	if err := f.svc.Reject(f.ctx, agent, o.ID, "The number belongs to another company.", "checked KvK"); err != nil {
		t.Fatal(err)
	}
	got := f.getOrg(o.ID)
	if got.Status != portal.OrgRejected || got.RejectReason != "The number belongs to another company." {
		t.Fatalf("rejected: %+v", got)
	}
	rej := f.mailsOf(validation.KindOrgRejected)
	if len(rej) != 2 || !strings.Contains(rej[0].Text, "The number belongs to another company.") {
		t.Fatalf("rejection emails: %+v", rej)
	}
	// a rejected organization can be corrected and submitted again
	if err := f.svc.SubmitOrg(f.ctx, f.admin, f.acct.ID, o.ID, "en"); err != nil {
		t.Fatal(err)
	}
	if got := f.getOrg(o.ID); got.Status != portal.OrgPending || got.RejectReason != "" {
		t.Fatalf("resubmitted: %s %q", got.Status, got.RejectReason)
	}
}

// Another account's organization does not exist for the caller.
func TestOrgOtherAccountNotFound(t *testing.T) {
	f := newFx(t, nil)
	o := f.pendingOrg()
	code, _, _ := f.svc.LeftMessage(f.ctx, validation.Actor{Email: "agent@certdesk.test"}, o.ID, "")
	_, _, err := f.svc.Org(f.ctx, f.other.ID, o.ID)
	wantCode(t, err, portal.ENotFound)
	wantCode(t, f.svc.UpdateOrg(f.ctx, f.admin, f.other.ID, o.ID, goodOrg()), portal.ENotFound)
	wantCode(t, f.svc.SubmitOrg(f.ctx, f.admin, f.other.ID, o.ID, "en"), portal.ENotFound)
	wantCode(t, f.svc.EnterCode(f.ctx, f.admin, f.other.ID, o.ID, code), portal.ENotFound)
	_, err = f.svc.AddDomain(f.ctx, f.admin, f.other.ID, o.ID, "acme.test", portal.DCVDNSTXT, "en")
	wantCode(t, err, portal.EInvalid) // "choose the organization": it is not theirs
	if orgs, _ := f.svc.Orgs(f.ctx, f.other.ID); len(orgs) != 0 {
		t.Fatalf("other account lists %d organizations", len(orgs))
	}
	if f.getOrg(o.ID).Status != portal.OrgPending {
		t.Fatal("changed through another account")
	}
}

// As part of an order: a draft or expired organization is queued tagged
// with the order; a validated one is left alone.
func TestSubmitOrgForOrder(t *testing.T) {
	f := newFx(t, nil)
	o := f.org()
	if err := f.db.Tx(f.ctx, func(tx txT) error { return f.svc.SubmitOrgForOrder(f.ctx, tx, f.acct.ID, o.ID, 42) }); err != nil {
		t.Fatal(err)
	}
	got := f.getOrg(o.ID)
	if got.Status != portal.OrgPending || got.OrderID != 42 {
		t.Fatalf("after order: %s order %d", got.Status, got.OrderID)
	}
	if err := f.svc.CallCompleted(f.ctx, validation.Actor{Email: "a@ca"}, o.ID, ""); err != nil {
		t.Fatal(err)
	}
	before := len(f.mails())
	if err := f.db.Tx(f.ctx, func(tx txT) error { return f.svc.SubmitOrgForOrder(f.ctx, tx, f.acct.ID, o.ID, 43) }); err != nil {
		t.Fatal(err)
	}
	if got := f.getOrg(o.ID); got.Status != portal.OrgValidated || len(f.mails()) != before {
		t.Fatalf("a validated organization was touched: %s", got.Status)
	}
	err := f.db.Tx(f.ctx, func(tx txT) error { return f.svc.SubmitOrgForOrder(f.ctx, tx, f.other.ID, o.ID, 44) })
	wantCode(t, err, portal.ENotFound)
}
