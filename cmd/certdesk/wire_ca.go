package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"certdesk/internal/ca"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
)

// caService is the CA wired into the server: the authority loaded from
// <data-dir>/ca (created on first start), the issuance pipeline and its
// scheduler.
//
// Wiring (wire.go, owned by the lead):
//
//	// app struct:
//	ca *caService
//	// wire(), after a.ordering is built (caa: the validation service's
//	// *validation.Checker, or nil for none; never a typed nil pointer):
//	if a.ca, err = wireCA(a, caa); err != nil {
//		return nil, err
//	}
//	a.ordering.Issuer = a.ca.Pipeline
//	// after a.ordering.KeyGen is set (plan periods and auto-renew):
//	a.ca.Renewals = &ordering.Renewals{Store: a.db, Orders: a.ordering, Clock: a.clock,
//		Log: a.log, Mail: a.mailer, BaseURL: a.cfg.BaseURL}
//	// deps():
//	d.CA, d.Certs = a.ca.Authority, a.ca.Pipeline
//	// start():
//	a.goRun(func() { a.ca.run(ctx) })
type caService struct {
	Authority *ca.Authority
	Pipeline  *ordering.Pipeline
	log       *slog.Logger
	clock     portal.Clock
	// every is the scheduler's tick: recover interrupted issuances, issue
	// ready recipients, regenerate a due CRL.
	every time.Duration
	// Renewals (plan periods, auto-renew) run on the same tick when set.
	Renewals *ordering.Renewals
}

func wireCA(a *app, caa ordering.CAAChecker) (*caService, error) {
	cfg := caConfig(a.cfg)
	dir := caDir(a.cfg)
	var auth *ca.Authority
	_, err := os.Stat(filepath.Join(dir, ca.IssuingCertFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		kt := envDefault("CERTDESK_CA_KEY_TYPE", ca.KeyRSA2048)
		if auth, err = ca.Init(dir, ca.InitOptions{Config: cfg, IssuingKeyType: kt}, a.clock); err != nil {
			return nil, fmt.Errorf("creating the CA in %s: %w", dir, err)
		}
		a.log.Info("CA created", "dir", dir, "issuing", auth.IssuingCert().Subject.String(), "key_type", kt)
	case err != nil:
		return nil, err
	default:
		if auth, err = ca.Load(dir, cfg, a.clock); err != nil {
			return nil, fmt.Errorf("loading the CA from %s: %w", dir, err)
		}
	}
	if cfg.AllowInternalNames {
		a.log.Warn("CA: internal names allowed in certificate URLs (development only)", "base_url", cfg.BaseURL)
	}
	if caa == nil {
		a.log.Warn("CA: no CAA issuemail check is wired; certificates are issued without it")
	}
	p := &ordering.Pipeline{Store: a.db, CA: auth, Billing: a.billing, CAA: caa, Clock: a.clock, Log: a.log,
		Mail: a.mailer, BaseURL: a.cfg.BaseURL}
	if a.validation != nil {
		p.Mailboxes = a.validation // SBR 4.2.1 at issuance: the same answer the ordering service gets
	}
	return &caService{Authority: auth, Pipeline: p, log: a.log, clock: a.clock, every: time.Minute}, nil
}

// run is the CA's scheduler. At start every 'issuing' row is from a
// process that died (one server per database), so all are recovered at
// once; then, every minute, interrupted issuances older than a minute are
// recovered, ready recipients issued, and the CRL regenerated when it is a
// day old or older than the newest revocation. Each step is idempotent, so
// two schedulers (or a restart mid-step) do no harm.
func (c *caService) run(ctx context.Context) {
	c.sweep(ctx, true)
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.sweep(ctx, false)
		}
	}
}

func (c *caService) sweep(ctx context.Context, atStart bool) {
	p := c.Pipeline
	var n int
	var err error
	if atStart {
		n, err = p.RecoverBefore(ctx, c.clock.Now())
	} else {
		n, err = p.Recover(ctx)
	}
	if err != nil {
		c.log.Error("recovering interrupted issuances", "err", err)
	} else if n > 0 {
		c.log.Warn("recovered interrupted issuances", "count", n)
	}
	if ctx.Err() != nil {
		return
	}
	if n := p.IssueReady(ctx); n > 0 {
		c.log.Info("scheduler issued certificates", "count", n)
	}
	if c.Renewals != nil {
		if err := c.Renewals.RenewalSweep(ctx); err != nil {
			c.log.Error("renewal sweep", "err", err)
		}
	}
	if due, err := p.CRLDue(ctx); err != nil {
		c.log.Error("CRL state", "err", err)
	} else if due {
		if err := p.RefreshCRL(ctx); err != nil {
			c.log.Error("CRL not regenerated", "err", err)
		}
	}
}
