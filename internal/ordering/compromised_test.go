package ordering_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
)

// Compromised keys: SBR 4.9.1.1 (3) (revoke every certificate of the key)
// and 6.1.1.3 (4) (reject a request for the key). The store records the
// key (store/compromised_test.go); these tests are what the pipeline and
// the order intake do with the record.

var _ ordering.CompromisedKeys = (*store.DB)(nil)

// issuedFor orders one certificate for email with csr and issues it.
func (e *issueEnv) issuedFor(email, csr string) portal.Certificate {
	e.t.Helper()
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, email)
	rid := o.Recipients[0].ID
	if _, err := e.db.Exec(`UPDATE recipients SET csr_pem = ? WHERE id = ?`, csr, rid); err != nil {
		e.t.Fatal(err)
	}
	if out, err := e.p.Issue(ctx, rid); err != nil || out != ordering.Issued {
		e.t.Fatalf("issue for %s: %v %v", email, out, err)
	}
	c, err := e.db.IssuedCertificate(ctx, nil, e.recipient(rid).CertificateID)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func spki(t *testing.T, der []byte) []byte {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c.RawSubjectPublicKeyInfo
}

// A recipient whose CSR is for a key revoked for keyCompromise on another
// certificate is held with the reason, nothing signed, charged or mailed;
// a recipient with another key in the same batch is issued.
func TestCompromisedKeyIsHeldNotIssued(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	csr := newCSR(t)
	c1 := e.issuedFor("first@example.com", csr)
	if err := e.p.Revoke(ctx, e.acct, c1.ID, 1, "req@example.com"); err != nil { // keyCompromise
		t.Fatal(err)
	}

	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "same@example.com", "fresh@example.com")
	same, fresh := o.Recipients[0].ID, o.Recipients[1].ID
	if _, err := e.db.Exec(`UPDATE recipients SET csr_pem = ? WHERE id = ?`, csr, same); err != nil {
		t.Fatal(err)
	}
	res := e.p.IssueBatch(ctx, []int64{same, fresh})
	if res[0].Outcome != ordering.Held || res[0].Err != nil {
		t.Errorf("recipient with the compromised key: %v %v, want Held", res[0].Outcome, res[0].Err)
	}
	if res[1].Outcome != ordering.Issued || res[1].Err != nil {
		t.Errorf("recipient with another key: %v %v, want Issued", res[1].Outcome, res[1].Err)
	}
	if r := e.recipient(same); r.Status != portal.RecipientHeld || r.HeldReason != ordering.KeyCompromised {
		t.Errorf("recipient with the compromised key: %s %q", r.Status, r.HeldReason)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, same); n != 0 {
		t.Errorf("%d certificate rows for the compromised key's recipient, want none (nothing signed)", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM outbox WHERE kind = ? AND to_addr = 'same@example.com'`, ordering.KindCertIssued); n != 0 {
		t.Errorf("%d issued emails for the compromised key", n)
	}
	if n, _ := e.bill.total(); n != 2 {
		t.Errorf("settled %d certificates, want 2 (the first and the fresh key)", n)
	}
	r := e.recipient(fresh)
	c2, err := e.db.IssuedCertificate(ctx, nil, r.CertificateID)
	if err != nil || r.Status != portal.RecipientIssued {
		t.Fatalf("fresh key: %s %v", r.Status, err)
	}
	if bytes.Equal(spki(t, c1.DER), spki(t, c2.DER)) {
		t.Error("the fresh recipient's certificate has the compromised key")
	}
	// The sweep does not retry the held recipient.
	if n := e.p.IssueReady(ctx); n != 0 {
		t.Errorf("sweep issued %d", n)
	}
	// Revoking with another reason does not block a key.
	csr2 := newCSR(t)
	c3 := e.issuedFor("superseded@example.com", csr2)
	if err := e.p.Revoke(ctx, e.acct, c3.ID, 4, "req@example.com"); err != nil {
		t.Fatal(err)
	}
	e.issuedFor("again@example.com", csr2)
}

// The colleague's reproduction: a plan's next period started with the
// order's CSR and waited (a CAA look-up failed); meanwhile certificate 1
// was revoked for keyCompromise. The next sweep must not issue
// certificate 2 for that key.
func TestPlanPeriodWaitingWhenItsKeyIsReportedCompromised(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	end := e.clock.Now().Add(1095 * days)
	o := e.order(portal.ProductIndividual, end, portal.RecipientReady, "jane@example.com")
	rid := o.Recipients[0].ID
	if out, err := e.p.Issue(ctx, rid); err != nil || out != ordering.Issued {
		t.Fatalf("period 1: %v %v", out, err)
	}
	c1 := e.cert(e.recipient(rid).CertificateID)

	e.p.CAA = fakeCAA{err: errors.New("SERVFAIL")}
	e.clock.Set(c1.NotAfter.Add(-30 * days))
	if res := e.sweep(); res.PeriodsStarted != 1 {
		t.Fatalf("sweep: %+v, want period 2 started", res)
	}
	if r := e.recipient(rid); r.PlanPeriod != 2 || r.Status != portal.RecipientReady {
		t.Fatalf("period 2 is not waiting: period %d %s", r.PlanPeriod, r.Status)
	}
	e.clock.Advance(time.Hour)
	if err := e.p.Revoke(ctx, e.acct, c1.ID, 1, "req@example.com"); err != nil {
		t.Fatal(err)
	}

	e.p.CAA = fakeCAA{allowed: true}
	if n := e.p.IssueReady(ctx); n != 0 {
		t.Errorf("the sweep issued %d certificates", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ? AND status = 'issued'`, rid); n != 0 {
		t.Errorf("%d valid certificates for the compromised key", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, rid); n != 1 {
		t.Errorf("%d certificate rows, want only certificate 1 (nothing signed for period 2)", n)
	}
	if r := e.recipient(rid); r.Status != portal.RecipientHeld || r.HeldReason != ordering.KeyCompromised {
		t.Errorf("recipient: period %d %s %q, want held: a new key is needed", r.PlanPeriod, r.Status, r.HeldReason)
	}
}

// A plan's two live certificates share the order's key: revoking one for
// keyCompromise revokes the other too, and the CRL lists both.
func TestKeyCompromiseRevokesThePlansOtherCertificate(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().Add(1095*days), portal.RecipientReady, "jane@example.com")
	rid := o.Recipients[0].ID
	if out, err := e.p.Issue(ctx, rid); err != nil || out != ordering.Issued {
		t.Fatalf("period 1: %v %v", out, err)
	}
	c1 := e.cert(e.recipient(rid).CertificateID)
	e.clock.Set(c1.NotAfter.Add(-30 * days))
	e.sweep()
	c2 := e.cert(e.recipient(rid).CertificateID)
	if c2.ID == c1.ID || c2.Status != "issued" || e.cert(c1.ID).Status != "issued" {
		t.Fatalf("want two live certificates: %d %s, %d %s", c1.ID, e.cert(c1.ID).Status, c2.ID, c2.Status)
	}

	e.clock.Advance(time.Hour)
	if err := e.p.Revoke(ctx, e.acct, c2.ID, 1, "req@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []int64{c1.ID, c2.ID} {
		got := e.cert(c)
		if got.Status != "revoked" || got.RevocationReason != 1 || !got.RevokedAt.Equal(e.clock.Now()) {
			t.Errorf("certificate %d: %s reason %d at %v, want revoked keyCompromise now", c, got.Status, got.RevocationReason, got.RevokedAt)
		}
	}
	crl := e.crlSerials()
	if crl[c1.Serial] != 1 || crl[c2.Serial] != 1 {
		t.Errorf("CRL %v: want %s and %s as keyCompromise", crl, c1.Serial, c2.Serial)
	}
	if got, err := e.db.CertificateBySerial(ctx, e.auth.IssuerID(), c1.Serial); err != nil || got.Status != "revoked" {
		t.Errorf("OCSP's record of certificate 1: %s %v", got.Status, err)
	}
}

// The order form and the API refuse a CSR of a compromised key beside its
// field (with the other recipients' errors), store nothing, and accept a
// CSR of another key.
func TestOrderWithACompromisedKeysCSRIsRefused(t *testing.T) {
	e := newRenewEnv(t)
	ctx := context.Background()
	csr := newCSR(t)
	c1 := e.issuedFor("first@example.com", csr)
	in := ordering.Input{Product: portal.ProductIndividual, Validity: ordering.Validity1Y, PaymentMethod: portal.PayContract, Agreed: true,
		Recipients: []ordering.RecipientInput{{Email: "a@example.com", HasCSR: true, CSR: csr}, {Email: "b@example.com", HasCSR: true, CSR: newCSR(t)}}}
	orders := e.count(`SELECT COUNT(*) FROM orders`)

	// Before the key is reported, the order is accepted.
	if _, err := e.svc.Check(ctx, e.user, in); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := e.p.Revoke(ctx, e.acct, c1.ID, 1, "req@example.com"); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Submit(ctx, e.user, in)
	var found *portal.Error
	for _, fe := range portal.AsFieldErrors(err) {
		if fe.Field == "r0_csr" {
			found = fe
		}
		if fe.Field == "r1_csr" {
			t.Errorf("the other key's CSR is refused: %v", fe)
		}
	}
	if found == nil || found.Key != "certs.csr_key_compromised" || portal.ErrorCode(err) != portal.EInvalid {
		t.Fatalf("Submit: %v, want a field error for r0_csr (certs.csr_key_compromised)", err)
	}
	if n := e.count(`SELECT COUNT(*) FROM orders`); n != orders {
		t.Errorf("%d orders stored, want %d", n, orders)
	}
	// With the other errors of the form at once.
	in.Agreed = false
	_, err = e.svc.Submit(ctx, e.user, in)
	if fieldErr(err, "r0_csr") == "" || fieldErr(err, "agree") == "" {
		t.Errorf("errors shown together: %v", portal.AsFieldErrors(err))
	}
	in.Agreed = true

	in.Recipients = in.Recipients[1:]
	if _, err := e.svc.Submit(ctx, e.user, in); err != nil {
		t.Errorf("the other key: %v", err)
	}
}

// KeyGen: a CSR of a compromised key sent through a link is not issued.
func TestKeyGenCSROfACompromisedKeyIsNotIssued(t *testing.T) {
	e := newKGEnv(t)
	ctx := context.Background()
	csr := rsaCSR(t)
	c1 := e.issuedFor("first@example.com", csr)
	if err := e.p.Revoke(ctx, e.acct, c1.ID, 1, "req@example.com"); err != nil {
		t.Fatal(err)
	}
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientAwaitingKeyGen, "kg@example.com")
	tok := e.send(o, o.Recipients[0])
	if got, err := e.ks.Exchange(ctx, tok, csr); err == nil {
		t.Fatalf("exchange issued %s for a compromised key", got.Serial)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ? AND status = 'issued'`, o.Recipients[0].ID); n != 0 {
		t.Errorf("%d certificates issued through the link", n)
	}
	if r := e.recipient(o.Recipients[0].ID); r.Status != portal.RecipientHeld || r.HeldReason != ordering.KeyCompromised {
		t.Errorf("recipient: %s %q", r.Status, r.HeldReason)
	}
}
