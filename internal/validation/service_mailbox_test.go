package validation_test

import (
	"testing"
	"time"

	"certdesk/internal/portal"
	"certdesk/internal/validation"
)

func (f *fx) startMailbox(email string, order int64) string {
	f.t.Helper()
	err := f.db.Tx(f.ctx, func(tx txT) error { return f.svc.StartMailboxForOrder(f.ctx, tx, f.acct.ID, email, order, "en") })
	if err != nil {
		f.t.Fatal(err)
	}
	ms := f.mailsOf(validation.KindMailboxConfirm)
	m := ms[len(ms)-1]
	if m.To != email {
		f.t.Fatalf("mailbox link sent to %s, want %s", m.To, email)
	}
	return token(f.t, m)
}

func (f *fx) mailboxOK(email string) bool {
	f.t.Helper()
	ok, err := f.svc.MailboxValidated(f.ctx, nil, f.acct.ID, email)
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

// SBR 3.2.2.2: the link goes to the address itself, works once, within 24
// hours; the validation is reused for 30 days.
func TestMailboxLinkWorksOnce(t *testing.T) {
	f := newFx(t, nil)
	tok := f.startMailbox("ann@gmail.com", 5)
	if f.mailboxOK("ann@gmail.com") {
		t.Fatal("validated before confirming")
	}
	var clear int
	_ = f.db.QueryRowContext(f.ctx, `SELECT COUNT(*) FROM mailbox_validations WHERE token_hash = ?`, tok).Scan(&clear)
	if clear != 0 {
		t.Fatal("token stored in clear")
	}
	f.clock.Advance(23 * time.Hour)
	info, err := f.svc.MailboxInfo(f.ctx, tok)
	if err != nil || info.Email != "ann@gmail.com" {
		t.Fatalf("info: %+v %v", info, err)
	}
	if f.mailboxOK("ann@gmail.com") {
		t.Fatal("showing the page (GET) validated the mailbox")
	}
	if _, err := f.svc.ConfirmMailbox(f.ctx, tok, "198.51.100.7"); err != nil {
		t.Fatal(err)
	}
	if !f.mailboxOK("ann@gmail.com") || f.adv.count(f.acct.ID) != 1 {
		t.Fatal("not validated or ordering not advanced")
	}
	if _, err := f.svc.ConfirmMailbox(f.ctx, tok, ""); err != validation.ErrLinkUsed {
		t.Fatalf("second use: %v", err)
	}
	if _, err := f.svc.MailboxInfo(f.ctx, tok); err != validation.ErrLinkUsed {
		t.Fatalf("page after use: %v", err)
	}
	// another account never benefits from this confirmation
	if ok, _ := f.svc.MailboxValidated(f.ctx, nil, f.other.ID, "ann@gmail.com"); ok {
		t.Fatal("validated for another account")
	}
	confirmed := t0.Add(23 * time.Hour)
	f.clock.Set(confirmed.Add(30*24*time.Hour - time.Second))
	if !f.mailboxOK("ann@gmail.com") {
		t.Fatal("not reusable just before 30 days")
	}
	f.clock.Set(confirmed.Add(30 * 24 * time.Hour))
	if f.mailboxOK("ann@gmail.com") {
		t.Fatal("still reusable after 30 days")
	}
}

func TestMailboxLinkExpiresAfter24Hours(t *testing.T) {
	f := newFx(t, nil)
	tok := f.startMailbox("bob@example.org", 5)
	f.clock.Advance(25 * time.Hour)
	if _, err := f.svc.MailboxInfo(f.ctx, tok); err != validation.ErrLinkExpired {
		t.Fatalf("25-hour-old link (page): %v", err)
	}
	if _, err := f.svc.ConfirmMailbox(f.ctx, tok, ""); err != validation.ErrLinkExpired {
		t.Fatalf("25-hour-old link: %v", err)
	}
	if f.mailboxOK("bob@example.org") {
		t.Fatal("validated by an expired link")
	}
	tok2 := f.startMailbox("bob@example.org", 5)
	f.clock.Set(t0.Add(25*time.Hour + 24*time.Hour - time.Second))
	if _, err := f.svc.ConfirmMailbox(f.ctx, tok2, ""); err != nil {
		t.Fatalf("fresh link a second before 24 hours: %v", err)
	}
}

// Re-sending makes a new value and kills the old one.
func TestMailboxResendKillsOldLink(t *testing.T) {
	f := newFx(t, nil)
	old := f.startMailbox("cat@example.org", 5)
	if err := f.svc.ResendMailbox(f.ctx, f.admin, f.acct.ID, "cat@example.org", "nl"); err != nil {
		t.Fatal(err)
	}
	ms := f.mailsOf(validation.KindMailboxConfirm)
	fresh := token(t, ms[len(ms)-1])
	if fresh == old {
		t.Fatal("re-send reused the value")
	}
	if _, err := f.svc.ConfirmMailbox(f.ctx, old, ""); err != validation.ErrLinkKilled {
		t.Fatalf("old link after re-send: %v", err)
	}
	if _, err := f.svc.ConfirmMailbox(f.ctx, fresh, ""); err != nil {
		t.Fatal(err)
	}
	// an address this account never asked about cannot be mailed through it
	wantCode(t, f.svc.ResendMailbox(f.ctx, f.admin, f.other.ID, "cat@example.org", "en"), portal.ENotFound)
	wantCode(t, f.svc.ResendMailbox(f.ctx, f.admin, f.acct.ID, "stranger@example.org", "en"), portal.ENotFound)
}
