package main

import (
	"context"
	"log/slog"

	"certdesk/handlers"
	"certdesk/internal/billing"
	"certdesk/internal/ca"
	"certdesk/internal/mail"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/internal/validation"
	"certdesk/store"
)

// app holds the services wired around the HTTP server: the composition
// root. Features plug in here and nowhere else.
type app struct {
	cfg        *Config
	log        *slog.Logger
	db         *store.DB
	clock      portal.Clock
	mailer     *mail.Worker
	billing    *billing.Service
	gateway    *billing.TestGateway
	ordering   *ordering.Service
	validation *validation.Service
	ca         *caService
	keygen     *ordering.LinkService
	cancel     context.CancelFunc
	done       []chan struct{}
}

func wire(ctx context.Context, cfg *Config, log *slog.Logger, db *store.DB, clock portal.Clock) (*app, error) {
	a := &app{cfg: cfg, log: log, db: db, clock: clock}
	sender, err := mail.NewSender(cfg.SMTPURL, cfg.MailFrom)
	if err != nil {
		return nil, err
	}
	a.mailer = &mail.Worker{
		Outbox: mail.NewOutbox(db, func(r store.OutboxMessage) mail.Message { return mail.Message(r) }),
		Sender: sender, Clock: clock, Logger: log,
	}
	// The built-in test gateway is the only card gateway so far: no real
	// card is ever charged by certdesk.
	a.gateway = billing.NewTestGateway(clock)
	a.billing = billing.NewService(db, a.gateway, clock)
	a.ordering = &ordering.Service{
		Store: db, Billing: billing.ForOrdering(a.billing), ParseCSR: ca.ParseCSR,
		Clock: clock, Log: log,
	}
	if a.validation, err = wireValidation(a); err != nil {
		return nil, err
	}
	a.ordering.Validator = a.validation
	// CAA issuemail (RFC 9495) is checked before every issuance.
	if a.ca, err = wireCA(a, a.validation.Checker); err != nil {
		return nil, err
	}
	a.ordering.Issuer = a.ca.Pipeline
	a.keygen = wireKeyGen(a, a.ca.Pipeline)
	a.ordering.KeyGen = a.keygen
	// Multi-year plans and auto-renew run on the CA scheduler's tick.
	a.ca.Renewals = &ordering.Renewals{Store: a.db, Orders: a.ordering, Clock: a.clock,
		Log: a.log, Mail: a.mailer, BaseURL: a.cfg.BaseURL}
	return a, nil
}

func (a *app) deps(d handlers.Deps) handlers.Deps {
	d.Mail = a.mailer
	d.Ordering = a.ordering
	d.Billing = a.billing
	d.Validation = a.validation
	d.CA, d.Certs = a.ca.Authority, a.ca.Pipeline
	d.KeyGen = a.keygen
	return d
}

// start launches background workers.
func (a *app) start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	a.goRun(func() { a.mailer.Run(ctx) })
	a.goRun(func() { a.ca.run(ctx) })
}

func (a *app) goRun(f func()) {
	d := make(chan struct{})
	a.done = append(a.done, d)
	go func() { defer close(d); f() }()
}

// stop ends background workers and waits for them.
func (a *app) stop() {
	if a.cancel != nil {
		a.cancel()
	}
	for _, d := range a.done {
		<-d
	}
}
