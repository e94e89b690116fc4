package ordering_test

import (
	"context"
	"crypto/x509"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"certdesk/internal/ca"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
)

// countingStore counts the pipeline's write transactions.
type countingStore struct {
	*store.DB
	txs atomic.Int64
}

func (c *countingStore) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	c.txs.Add(1)
	return c.DB.Tx(ctx, fn)
}

// pickyCA refuses (lint) the recipients in refuse and, when signing,
// records how many of the batch's intent rows are committed (seen from
// another connection).
type pickyCA struct {
	*ca.Authority
	db        *store.DB
	refuse    map[string]bool
	mu        sync.Mutex
	atSigning []int
}

func (p *pickyCA) Issue(req ca.IssueRequest) (*ca.Issued, error) {
	var n int
	if err := p.db.QueryRow(`SELECT COUNT(*) FROM certificates WHERE status = 'issuing'`).Scan(&n); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.atSigning = append(p.atSigning, n)
	p.mu.Unlock()
	if p.refuse[req.Emails[0]] {
		return nil, &ca.LintError{Findings: []ca.LintFinding{{Name: "e_mailbox_validated_allowed_subjectdn_attributes", Status: "error"}}}
	}
	return p.Authority.Issue(req)
}

// orderSettler refuses payment for one order.
type orderSettler struct {
	fakeSettler
	refuse int64
}

func (o *orderSettler) Settle(ctx context.Context, tx *sql.Tx, account, order, amount int64) error {
	if order == o.refuse {
		return portal.Errorf(portal.EConflict, "no payment was authorized for order %d", order)
	}
	return o.fakeSettler.Settle(ctx, tx, account, order, amount)
}

func TestIssueBatchTwoTransactionsPerRecipientOutcomes(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	end := e.clock.Now().AddDate(1, 0, 0)
	multi := e.order(portal.ProductIndividual, end, portal.RecipientReady, "a@example.com", "b@example.com", "lint@example.com")
	paid := e.order(portal.ProductOrganization, end, portal.RecipientReady, "c@example.com")
	unpaid := e.order(portal.ProductIndividual, end, portal.RecipientReady, "nopay@example.com")
	waiting := e.order(portal.ProductIndividual, end, portal.RecipientAwaitingKeyGen, "later@example.com")

	cs := &countingStore{DB: e.db}
	picky := &pickyCA{Authority: e.auth, db: e.db, refuse: map[string]bool{"lint@example.com": true}}
	bill := &orderSettler{refuse: unpaid.ID}
	e.p.Store, e.p.CA, e.p.Billing = cs, picky, bill

	ids := []int64{multi.Recipients[0].ID, multi.Recipients[1].ID, multi.Recipients[2].ID, paid.Recipients[0].ID,
		unpaid.Recipients[0].ID, waiting.Recipients[0].ID, multi.Recipients[0].ID}
	res := e.p.IssueBatch(ctx, ids)
	if len(res) != 6 {
		t.Fatalf("%d results for 6 distinct recipients", len(res))
	}
	want := map[int64]ordering.Outcome{
		multi.Recipients[0].ID: ordering.Issued, multi.Recipients[1].ID: ordering.Issued, paid.Recipients[0].ID: ordering.Issued,
		multi.Recipients[2].ID: ordering.Held, unpaid.Recipients[0].ID: ordering.Held, waiting.Recipients[0].ID: ordering.Skipped,
	}
	for _, r := range res {
		if r.Err != nil || r.Outcome != want[r.RecipientID] {
			t.Errorf("recipient %d: %v %v, want %v", r.RecipientID, r.Outcome, r.Err, want[r.RecipientID])
		}
	}
	// One intent and one completion transaction for the whole batch; then,
	// as for one recipient, the payment refusal's revocation regenerates the
	// CRLs of the issuing CA and the root (two more).
	if n := cs.txs.Load(); n != 2+2 {
		t.Errorf("%d transactions, want 4", n)
	}
	// Every intent row of the batch was committed before the first signature.
	for _, n := range picky.atSigning {
		if n != 5 {
			t.Errorf("%d intent rows committed when signing, want 5: %v", n, picky.atSigning)
			break
		}
	}
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if n := e.count(`SELECT COUNT(*) FROM certificates c JOIN recipients r ON r.id = c.recipient_id
			WHERE r.email = ? AND c.status = 'issued' AND c.der IS NOT NULL AND r.status = 'issued' AND r.certificate_id = c.id`, email); n != 1 {
			t.Errorf("%s: %d issued certificates", email, n)
		}
		if n := e.count(`SELECT COUNT(*) FROM outbox WHERE kind = ? AND to_addr = ?`, ordering.KindCertIssued, email); n != 1 {
			t.Errorf("%s: %d issued emails", email, n)
		}
	}
	if n, _ := bill.total(); n != 3 {
		t.Errorf("settled %d times, want 3", n)
	}
	// Each certificate settles its share of its order: the three-recipient
	// order's amount divided by three (its recipients share one order row
	// in the batch), the one-recipient order's whole amount.
	for _, c := range bill.calls {
		want := paid.AmountCents
		if c.order == multi.ID {
			want = multi.AmountCents / 3
		}
		if c.amount != want || want == 0 {
			t.Errorf("order %d settled %d cents, want %d", c.order, c.amount, want)
		}
	}
	// The lint refusal: failed row, nothing signed, held for review.
	if r := e.recipient(multi.Recipients[2].ID); r.Status != portal.RecipientHeld || r.HeldReason != ordering.HeldForReview {
		t.Errorf("lint-refused recipient %s %q", r.Status, r.HeldReason)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ? AND status = 'failed' AND der IS NULL
		AND lint_findings = 'e_mailbox_validated_allowed_subjectdn_attributes'`, multi.Recipients[2].ID); n != 1 {
		t.Errorf("lint refusal row missing")
	}
	// The payment refusal: signed, never delivered, revoked, on the CRL, held.
	if r := e.recipient(unpaid.Recipients[0].ID); r.Status != portal.RecipientHeld || !strings.Contains(r.HeldReason, "no payment") {
		t.Errorf("unpaid recipient %s %q", r.Status, r.HeldReason)
	}
	var serial string
	var der []byte
	if err := e.db.QueryRow(`SELECT serial, der FROM certificates WHERE recipient_id = ? AND status = 'revoked'`, unpaid.Recipients[0].ID).Scan(&serial, &der); err != nil {
		t.Fatalf("no revoked row for the unpaid certificate: %v", err)
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Errorf("the undelivered DER was not kept: %v", err)
	}
	if _, ok := e.crlSerials()[serial]; !ok {
		t.Error("the undelivered certificate is not on the CRL")
	}
	if n := e.count(`SELECT COUNT(*) FROM outbox WHERE to_addr = 'nopay@example.com'`); n != 0 {
		t.Errorf("%d emails for the undelivered certificate", n)
	}
	// Orders: the single-recipient paid order is completed; the one with a
	// held recipient is not.
	for id, st := range map[int64]portal.OrderStatus{paid.ID: portal.OrderCompleted, multi.ID: portal.OrderPending} {
		if o, err := e.db.Order(ctx, nil, e.acct, id); err != nil || o.Status != st {
			t.Errorf("order %d: %s %v, want %s", id, o.Status, err, st)
		}
	}
	// Idempotent.
	for _, r := range e.p.IssueBatch(ctx, ids) {
		if r.Outcome == ordering.Issued || r.Err != nil {
			t.Errorf("second batch: %d %v %v", r.RecipientID, r.Outcome, r.Err)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates`); n != 5 {
		t.Errorf("%d certificate rows after a second batch, want 5", n)
	}
	// A batch where everything is issued: exactly two transactions.
	more := e.order(portal.ProductIndividual, end, portal.RecipientReady, "d@example.com", "e@example.com", "f@example.com")
	before := cs.txs.Load()
	for _, r := range e.p.IssueBatch(ctx, []int64{more.Recipients[0].ID, more.Recipients[1].ID, more.Recipients[2].ID}) {
		if r.Outcome != ordering.Issued || r.Err != nil {
			t.Errorf("recipient %d: %v %v", r.RecipientID, r.Outcome, r.Err)
		}
	}
	if n := cs.txs.Load() - before; n != 2 {
		t.Errorf("a batch of three took %d transactions, want 2", n)
	}
}

// Fifty concurrent batches (and single attempts) over the same recipients:
// each gets exactly one certificate, one payment and one email.
func TestConcurrentBatchesIssueOncePerRecipient(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady,
		"r1@example.com", "r2@example.com", "r3@example.com", "r4@example.com", "r5@example.com")
	var ids []int64
	for _, r := range o.Recipients {
		ids = append(ids, r.ID)
	}
	var wg sync.WaitGroup
	var issued atomic.Int64
	errs := make(chan error, 50*len(ids))
	start := make(chan struct{})
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if i%10 == 0 {
				out, err := e.p.Issue(ctx, ids[i%len(ids)])
				if out == ordering.Issued {
					issued.Add(1)
				}
				if err != nil {
					errs <- err
				}
				return
			}
			// Every batch in its own order of recipients.
			mine := append([]int64(nil), ids[i%len(ids):]...)
			mine = append(mine, ids[:i%len(ids)]...)
			for _, r := range e.p.IssueBatch(ctx, mine) {
				if r.Outcome == ordering.Issued {
					issued.Add(1)
				}
				if r.Err != nil {
					errs <- fmt.Errorf("recipient %d: %w", r.RecipientID, r.Err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("an attempt returned an error: %v", err)
	}
	if n := issued.Load(); n != int64(len(ids)) {
		t.Errorf("%d attempts report Issued, want %d", n, len(ids))
	}
	for _, id := range ids {
		if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ?`, id); n != 1 {
			t.Errorf("recipient %d: %d certificate rows (any status), want 1", id, n)
		}
	}
	if n, _ := e.bill.total(); n != len(ids) {
		t.Errorf("settled %d times, want %d", n, len(ids))
	}
	if n := e.count(`SELECT COUNT(*) FROM outbox WHERE kind = ?`, ordering.KindCertIssued); n != len(ids) {
		t.Errorf("%d issued emails, want %d", n, len(ids))
	}
	if got, _ := e.db.Order(ctx, nil, e.acct, o.ID); got.Status != portal.OrderCompleted {
		t.Errorf("order %s", got.Status)
	}
}

// A batch interrupted after its intent transaction (the process died while
// signing): Recover revokes every row of it, and the sweep issues each
// recipient again, once.
func TestInterruptedBatchIsRecoveredAndReissued(t *testing.T) {
	e := newIssueEnv(t)
	ctx := context.Background()
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady,
		"x1@example.com", "x2@example.com", "x3@example.com")
	// The intent transaction of a batch, as IssueBatch commits it.
	var certs []*portal.Certificate
	for _, r := range o.Recipients {
		certs = append(certs, &portal.Certificate{AccountID: e.acct, OrderID: o.ID, RecipientID: r.ID, PlanPeriod: 1,
			Serial: ordering.SerialHex(ca.NewSerial()), Emails: []string{r.Email}})
	}
	err := e.db.Tx(ctx, func(tx *sql.Tx) error {
		errs, err := e.db.BeginIssuances(ctx, tx, certs, e.auth.IssuerID())
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// While fresh, a batch treats them as in progress.
	for _, r := range e.p.IssueBatch(ctx, []int64{o.Recipients[0].ID, o.Recipients[1].ID, o.Recipients[2].ID}) {
		if r.Outcome != ordering.InProgress || r.Err != nil {
			t.Fatalf("fresh intent: %v %v", r.Outcome, r.Err)
		}
	}
	e.clock.Advance(2 * time.Minute)
	if n, err := e.p.Recover(ctx); err != nil || n != 3 {
		t.Fatalf("Recover: %d %v", n, err)
	}
	if n := e.p.IssueReady(ctx); n != 3 {
		t.Fatalf("sweep issued %d, want 3", n)
	}
	crl := e.crlSerials()
	for _, c := range certs {
		if reason, ok := crl[c.Serial]; !ok || reason != 5 {
			t.Errorf("interrupted serial %s not on the CRL as cessationOfOperation", c.Serial)
		}
	}
	for _, r := range o.Recipients {
		if n := e.count(`SELECT COUNT(*) FROM certificates WHERE recipient_id = ? AND status = 'issued'`, r.ID); n != 1 {
			t.Errorf("recipient %d: %d issued", r.ID, n)
		}
	}
}

// cancellingCA ends the caller's context while it signs.
type cancellingCA struct {
	*ca.Authority
	cancel context.CancelFunc
}

func (c *cancellingCA) Issue(req ca.IssueRequest) (*ca.Issued, error) {
	c.cancel()
	return c.Authority.Issue(req)
}

// Once signed, a certificate is stored and delivered even when the
// caller's context ends meanwhile (a client gone, a shutdown): revoking it
// would only waste it.
func TestCancelledAfterSigningStillIssues(t *testing.T) {
	e := newIssueEnv(t)
	o := e.order(portal.ProductIndividual, e.clock.Now().AddDate(1, 0, 0), portal.RecipientReady, "c1@example.com", "c2@example.com")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.p.CA = &cancellingCA{Authority: e.auth, cancel: cancel}
	for _, r := range e.p.IssueBatch(ctx, []int64{o.Recipients[0].ID, o.Recipients[1].ID}) {
		if r.Outcome != ordering.Issued || r.Err != nil {
			t.Errorf("recipient %d: %v %v", r.RecipientID, r.Outcome, r.Err)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE status = 'issued'`); n != 2 {
		t.Errorf("%d issued certificates, want 2", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM certificates WHERE status = 'revoked'`); n != 0 {
		t.Errorf("%d revoked", n)
	}
}
