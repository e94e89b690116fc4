package main

import (
	"context"
	"log/slog"

	"certdesk/handlers"
	"certdesk/internal/portal"
	"certdesk/store"
)

// app holds the background services wired around the HTTP server.
type app struct {
	cfg    *Config
	log    *slog.Logger
	db     *store.DB
	clock  portal.Clock
	cancel context.CancelFunc
	done   []chan struct{}
}

func wire(ctx context.Context, cfg *Config, log *slog.Logger, db *store.DB, clock portal.Clock) (*app, error) {
	return &app{cfg: cfg, log: log, db: db, clock: clock}, nil
}

func (a *app) mailWaker() handlers.Waker { return nil }

// extend gives the HTTP server the services wired here.
func (a *app) extend(s *handlers.Server) {}

// start launches background workers.
func (a *app) start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	_ = ctx
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

func (a *app) close() {}
