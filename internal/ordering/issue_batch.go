package ordering

// Batched issuance: the pipeline of issue.go for many ready recipients
// with ONE intent transaction and ONE completion transaction, the CA work
// (lint and sign) and the email rendering in parallel between them. Every
// guarantee of the single pipeline holds per recipient:
//
//   - Intent before signing: the 'issuing' rows of the whole batch are
//     committed before the CA key signs anything; a crash after that
//     leaves rows that Recover revokes, exactly as for one recipient.
//   - At most once per recipient and plan period: each intent row is an
//     INSERT guarded by certificates_live and by the recipient still being
//     ready; a conflict fails that statement alone (InProgress/Skipped for
//     that recipient), the rest of the batch goes on.
//   - Per-recipient outcomes: a lint refusal or a request the CA refuses
//     fails that recipient's row and holds it; a completion that fails
//     (a payment refusal) is undone to a savepoint and handled like the
//     single pipeline's completionFailed; the others are issued.
//
// Issue is a batch of one, so both paths are the same code.

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"certdesk/internal/ca"
	"certdesk/internal/portal"
)

// DefaultBatchSize is how many recipients IssueReady issues per batch
// (Pipeline.BatchSize). A batch holds its intent rows for the time it
// takes to sign all of them, which must stay far below StaleAfter.
const DefaultBatchSize = 64

// BatchResult is one recipient's outcome in IssueBatch. Err has the same
// meaning as Issue's: nothing changed for that recipient and a later
// attempt may succeed.
type BatchResult struct {
	RecipientID int64
	Outcome     Outcome
	Err         error
}

// batchItem carries one recipient through a batch.
type batchItem struct {
	id     int64
	d      *issueData
	hold   string                 // a refusal found while loading: hold with this reason
	back   portal.RecipientStatus // a validation lapsed (SBR 4.2.1): back to waiting for it
	serial *big.Int
	cert   portal.Certificate
	iss    *ca.Issued
	sigErr error // from Authority.Issue
	emails []portal.Email
	out    Outcome
	err    error
	done   bool
}

func (it *batchItem) finish(out Outcome, err error) {
	it.out, it.err, it.done = out, err, true
}

func (p *Pipeline) workers() int {
	if p.Workers > 0 {
		return p.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// parallel runs fn(0..n-1) on up to workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	if n == 1 || workers <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// IssueBatch issues the given ready recipients (see the comment at the top
// of this file) and returns one result per distinct id, in order. It is
// idempotent and safe to run concurrently with itself, Issue and Recover.
func (p *Pipeline) IssueBatch(ctx context.Context, recipientIDs []int64) []BatchResult {
	var items []*batchItem
	seen := map[int64]bool{}
	for _, id := range recipientIDs {
		if !seen[id] {
			seen[id] = true
			items = append(items, &batchItem{id: id})
		}
	}

	// 1. Load and CAA check, no transaction. Recipients of one order share
	// its order, requestor and organizations: read once per batch.
	memo := newLoadMemo()
	parallel(len(items), p.workers(), func(i int) { p.prepare(ctx, items[i], memo) })

	// 2. Intent: ONE transaction with the holds found while loading and
	// every intent row, before anything is signed.
	var holds, backs, intents []*batchItem
	for _, it := range items {
		switch {
		case it.done:
		case it.back != "":
			backs = append(backs, it)
		case it.hold != "":
			holds = append(holds, it)
		default:
			intents = append(intents, it)
		}
	}
	var signing []*batchItem
	if len(holds)+len(backs)+len(intents) > 0 {
		err := p.Store.Tx(ctx, func(tx *sql.Tx) error {
			signing = signing[:0]
			for _, it := range backs {
				moved, err := p.Store.RequeueReady(ctx, tx, it.id, it.back)
				if err != nil {
					return err
				}
				it.out = Skipped
				if moved && it.back == portal.RecipientAwaitingMailbox {
					// The address confirms again (SBR 3.2.2.2), in the
					// order's language, as when the order was placed.
					r := it.d.r
					if err := p.Mailboxes.StartMailboxForOrder(ctx, tx, r.AccountID, r.Email, r.OrderID, it.d.user.Lang); err != nil {
						return err
					}
				}
			}
			for _, it := range holds {
				ok, err := p.Store.HoldRecipient(ctx, tx, it.id, it.hold)
				if err != nil {
					return err
				}
				it.out = Skipped
				if ok {
					it.out = Held
				}
			}
			certs := make([]*portal.Certificate, len(intents))
			for i, it := range intents {
				certs[i] = &it.cert
			}
			errs, err := p.Store.BeginIssuances(ctx, tx, certs, p.CA.IssuerID())
			if err != nil {
				return err
			}
			for i, it := range intents {
				switch {
				case errs[i] == nil:
					signing = append(signing, it)
				case isKey(errs[i], "certs.in_progress"):
					it.out = InProgress
				default: // no longer ready
					it.out = Skipped
				}
			}
			return nil
		})
		if err != nil {
			for _, it := range append(append(holds, backs...), intents...) {
				it.finish(Skipped, err)
			}
			return results(items)
		}
		for _, it := range append(append(holds, backs...), intents...) {
			it.done = true
		}
		for _, it := range signing {
			it.done = false
		}
	}

	// 3. Sign (lint first, inside Authority.Issue) and render the emails,
	// in parallel, outside any transaction.
	parallel(len(signing), p.workers(), func(i int) { p.sign(signing[i]) })

	// 4. Completion: ONE transaction. Refusals fail their row and hold the
	// recipient; each completion runs in a savepoint so that one failing
	// (a payment refusal) is undone alone. Once the CA key has signed,
	// storing the certificates is better than revoking them, so the
	// caller's cancellation (a client gone, a shutdown) no longer applies.
	ctx = context.WithoutCancel(ctx)
	var signed, afterSign, complFailed []*batchItem
	for _, it := range signing {
		if it.sigErr == nil {
			signed = append(signed, it)
		}
	}
	if len(signing) > 0 {
		err := p.Store.Tx(ctx, func(tx *sql.Tx) error {
			afterSign, complFailed = afterSign[:0], complFailed[:0]
			orders := map[int64]bool{}
			for _, it := range signing {
				it.out, it.err = Skipped, nil
				if it.sigErr != nil {
					if !nothingSigned(it.sigErr) {
						afterSign = append(afterSign, it) // possibly signed: revoked below
						continue
					}
					lint, failure, reason := p.refusal(it)
					if err := p.Store.FailIssuance(ctx, tx, it.cert.ID, lint, failure); err != nil {
						return err
					}
					ok, err := p.Store.HoldRecipient(ctx, tx, it.id, reason)
					if err != nil {
						return err
					}
					if ok {
						it.out = Held
					}
					continue
				}
				var fnErr, err error
				if len(signing) == 1 {
					// Alone in the transaction: a failure rolls all of it
					// back (handled below), no savepoint needed.
					err = p.complete(ctx, tx, it)
				} else {
					fnErr, err = p.Store.InSavepoint(ctx, tx, func() error { return p.complete(ctx, tx, it) })
				}
				if err != nil {
					return err
				}
				if fnErr != nil {
					it.err = fnErr
					complFailed = append(complFailed, it)
					continue
				}
				it.out = Issued
				orders[it.d.r.OrderID] = true
			}
			for id := range orders {
				if err := p.Store.CompleteOrderIfDone(ctx, tx, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			// Nothing of the transaction was stored. Refusals are
			// recorded one by one; signed certificates were never
			// delivered: revoked (completionFailed).
			afterSign, complFailed = afterSign[:0], complFailed[:0]
			for _, it := range signing {
				switch {
				case it.sigErr != nil:
					afterSign = append(afterSign, it)
				default:
					it.err = err
					complFailed = append(complFailed, it)
				}
			}
		}
		for _, it := range signing {
			it.done = true
		}
		for _, it := range afterSign {
			it.out, it.err = p.signFailed(ctx, it.cert, it.sigErr)
		}
		for _, it := range complFailed {
			it.out, it.err = p.completionFailed(ctx, it.d, it.cert, it.err)
		}
	}

	issued := 0
	for _, it := range signed {
		if it.out == Issued {
			issued++
			p.log().Info("certificate issued", "certificate_id", it.cert.ID, "recipient_id", it.id, "order_id", it.d.r.OrderID,
				"serial", it.cert.Serial, "plan_period", it.cert.PlanPeriod)
		}
	}
	if issued > 0 && p.Mail != nil {
		p.Mail.Wake()
	}
	return results(items)
}

func results(items []*batchItem) []BatchResult {
	out := make([]BatchResult, len(items))
	for i, it := range items {
		out[i] = BatchResult{RecipientID: it.id, Outcome: it.out, Err: it.err}
	}
	return out
}

// prepare loads a recipient, checks the key and CAA and fills the intent
// row.
func (p *Pipeline) prepare(ctx context.Context, it *batchItem, memo *loadMemo) {
	d, out, hold, err := p.load(ctx, it.id, memo)
	if err == nil && d != nil && d.back != "" {
		p.log().Info("a validation lapsed before issuance (SBR 4.2.1): the recipient waits for it again",
			"recipient_id", it.id, "status", string(d.back))
		it.back, it.d = d.back, d
		return
	}
	if hold != "" {
		it.hold = hold
		return
	}
	if err != nil || out != Issued {
		it.finish(out, err)
		return
	}
	it.d = d
	r := d.r
	// SBR 6.1.1.3 (4): never for a key reported compromised (a plan's
	// next period or another order with the CSR of a revoked certificate).
	if bad, err := p.keyCompromised(ctx, d.request.PublicKey); err != nil {
		it.finish(Skipped, err)
		return
	} else if bad {
		p.log().Warn("issuance refused: the key of the request was reported compromised", "recipient_id", r.ID)
		it.hold = KeyCompromised
		return
	}
	// CAA issuemail (SBR 4.2.2.1) for the address's domain.
	if p.CAA != nil {
		dom := portal.EmailDomain(r.Email)
		ok, reason, err := p.CAA.CheckCAAIssueMail(ctx, dom)
		if err != nil {
			it.finish(Skipped, fmt.Errorf("CAA lookup for %s failed, issuance deferred: %w", dom, err))
			return
		}
		if !ok {
			p.log().Warn("issuance prevented by CAA", "recipient_id", r.ID, "domain", dom, "reason", reason)
			it.hold = "CAA: " + reason
			return
		}
	}
	it.serial = ca.NewSerial()
	it.cert = portal.Certificate{AccountID: r.AccountID, OrderID: r.OrderID, RecipientID: r.ID, PlanPeriod: r.PlanPeriod,
		Serial: SerialHex(it.serial), Emails: []string{r.Email}, Profile: ProfileName(d.prod)}
}

// KeyCompromised is the reason a recipient is held when the key of its
// request was reported compromised (SBR 6.1.1.3 (4)); its translation is
// certs.key_compromised.
const KeyCompromised = "The key of this request was reported compromised; a new key is needed."

// CompromisedKeys is the store's record of compromised keys (store.DB,
// migration 0050), looked up by the SHA-256 of a key's DER
// subjectPublicKeyInfo (SPKISHA256).
type CompromisedKeys interface {
	KeyCompromised(ctx context.Context, spkiSHA256 []byte) (bool, error)
}

// SPKISHA256 is the SHA-256 of a public key's DER subjectPublicKeyInfo,
// as x509.CreateCertificate puts it into the certificate.
func SPKISHA256(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}

// keyCompromised reports whether pub was recorded as compromised. A store
// without the record (CompromisedKeys; store.DB has it) answers false.
func (p *Pipeline) keyCompromised(ctx context.Context, pub crypto.PublicKey) (bool, error) {
	return isKeyCompromised(ctx, p.Store, pub)
}

func isKeyCompromised(ctx context.Context, store any, pub crypto.PublicKey) (bool, error) {
	ck, ok := store.(CompromisedKeys)
	if !ok || pub == nil {
		return false, nil
	}
	h, err := SPKISHA256(pub)
	if err != nil {
		// Not a key x509 can put into a certificate, so never in one
		// revoked for keyCompromise (the CA's intake refuses it anyway).
		return false, nil
	}
	return ck.KeyCompromised(ctx, h)
}

// loadMemo keeps, for one batch, the rows its recipients share: their
// orders (without recipients), the requestors and the accounts'
// organizations. A batch is loaded in one go, so this reads what reading
// them per recipient would have read at the same moment. Safe for the
// batch's workers; two workers missing the same key both read it.
type loadMemo struct {
	mu     sync.Mutex
	orders map[int64]orderHead
	users  map[int64]portal.User
	orgsOf map[int64][]portal.Organization
}

type orderHead struct {
	o portal.Order
	n int // recipients
}

func newLoadMemo() *loadMemo {
	return &loadMemo{orders: map[int64]orderHead{}, users: map[int64]portal.User{}, orgsOf: map[int64][]portal.Organization{}}
}

// memoGet returns m[k], reading it with read when it is not there yet;
// errors are not kept.
func memoGet[V any](mu *sync.Mutex, m map[int64]V, k int64, read func() (V, error)) (V, error) {
	mu.Lock()
	v, ok := m[k]
	mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := read()
	if err != nil {
		return v, err
	}
	mu.Lock()
	m[k] = v
	mu.Unlock()
	return v, nil
}

func (m *loadMemo) order(ctx context.Context, s IssueStore, id int64) (orderHead, error) {
	return memoGet(&m.mu, m.orders, id, func() (orderHead, error) {
		o, n, err := s.OrderHead(ctx, nil, id)
		return orderHead{o, n}, err
	})
}

func (m *loadMemo) user(ctx context.Context, s IssueStore, id int64) (portal.User, error) {
	return memoGet(&m.mu, m.users, id, func() (portal.User, error) { return s.UserByID(ctx, id) })
}

// orgs returns the account's organizations; callers must not modify them.
func (m *loadMemo) orgs(ctx context.Context, s IssueStore, accountID int64) ([]portal.Organization, error) {
	return memoGet(&m.mu, m.orgsOf, accountID, func() ([]portal.Organization, error) {
		return s.OrgsForAccount(ctx, nil, accountID)
	})
}

// sign has the CA lint and sign, then fills the certificate row and
// renders the emails.
func (p *Pipeline) sign(it *batchItem) {
	req := it.d.request
	req.Serial = it.serial
	iss, err := p.CA.Issue(req)
	if err != nil {
		it.sigErr = err
		return
	}
	it.iss = iss
	c := &it.cert
	c.DER = iss.DER
	c.Subject = SubjectString(iss.Certificate.Subject)
	c.Emails = iss.Certificate.EmailAddresses
	c.NotBefore, c.NotAfter = iss.NotBefore, iss.NotAfter
	sum := sha256.Sum256(iss.DER)
	c.FingerprintSHA = hex.EncodeToString(sum[:])
	spki := sha256.Sum256(iss.Certificate.RawSubjectPublicKeyInfo)
	c.SPKISHA256 = hex.EncodeToString(spki[:])
	it.emails = p.issuedEmails(it.d, *c, iss)
}

// complete stores one signed certificate with its recipient, payment and
// emails, inside tx (in a savepoint).
func (p *Pipeline) complete(ctx context.Context, tx *sql.Tx, it *batchItem) error {
	r := it.d.r
	amount, err := p.amountDue(ctx, tx, it.d)
	if err != nil {
		return err
	}
	if err := p.Store.CompleteIssuance(ctx, tx, it.cert, amount); err != nil {
		return err
	}
	if err := p.Billing.Settle(ctx, tx, r.AccountID, r.OrderID, amount); err != nil {
		return err
	}
	for _, e := range it.emails {
		if _, err := p.Store.EnqueueEmail(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// nothingSigned reports whether an Authority.Issue error means the CA key
// signed nothing: a lint refusal or a request the CA refused.
func nothingSigned(err error) bool {
	var le *ca.LintError
	var pe *portal.Error
	return errors.As(err, &le) || (errors.As(err, &pe) && pe.Code != portal.EInternal)
}

// refusal is what is recorded for a nothingSigned error: the lint names
// (CA staff), the failure, and the reason the requestor sees.
func (p *Pipeline) refusal(it *batchItem) (lint []string, failure, reason string) {
	var le *ca.LintError
	if errors.As(it.sigErr, &le) {
		p.log().Error("pre-issuance lint refused a certificate; nothing was signed", "recipient_id", it.id,
			"serial", it.cert.Serial, "lints", strings.Join(le.Names(), ","))
		return le.Names(), "pre-issuance lint", HeldForReview
	}
	var pe *portal.Error
	errors.As(it.sigErr, &pe)
	p.log().Warn("the CA refused the request; nothing was signed", "recipient_id", it.id, "err", it.sigErr.Error())
	return nil, pe.Message, pe.Message
}
