package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"certdesk/handlers"
	"certdesk/internal/identity"
	"certdesk/internal/portal"
	"certdesk/store"
)

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func openStore(ctx context.Context, cfg *Config, clock portal.Clock) (*store.DB, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	return store.Open(ctx, cfg.dbPath(), clock)
}

func cmdMigrate(args []string) error {
	var cfg Config
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	commonFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openStore(context.Background(), &cfg, portal.SystemClock{})
	if err != nil {
		return err
	}
	defer db.Close()
	names, err := db.AppliedMigrations(context.Background())
	if err != nil {
		return err
	}
	fmt.Printf("database %s: %d migrations applied, last %s\n", cfg.dbPath(), len(names), names[len(names)-1])
	return nil
}

func cmdServe(args []string) error {
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.normalize()
	log := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	clock := portal.SystemClock{}
	db, err := openStore(ctx, &cfg, clock)
	if err != nil {
		return err
	}
	defer db.Close()
	// Outside development a delivered email loses its bodies and
	// attachments (single-use links, certificates kept elsewhere); the dev
	// mailbox shows them, so --dev keeps them.
	if !cfg.Dev {
		db.ScrubSentMail = true
		if n, err := db.ScrubSentOutbox(ctx); err != nil {
			return err
		} else if n > 0 {
			log.Info("bodies of delivered emails removed", "messages", n)
		}
	}
	keys, err := loadOrCreateSessionKeys(cfg.DataDir)
	if err != nil {
		return err
	}
	idsvc := &identity.Service{Store: db, Clock: clock}

	app, err := wire(ctx, &cfg, log, db, clock)
	if err != nil {
		return err
	}

	srv := handlers.New(handlers.Config{BaseURL: cfg.BaseURL, Dev: cfg.Dev}, app.deps(handlers.Deps{
		DB: db, Identity: idsvc, Clock: clock, Log: log, SessionKeys: keys,
	}))

	if cfg.Dev {
		if err := seedDev(ctx, db, log, app); err != nil {
			return fmt.Errorf("dev seed: %w", err)
		}
	}
	if need, err := idsvc.SetupNeeded(ctx); err != nil {
		return err
	} else if need {
		tok, err := idsvc.NewSetupLink(ctx)
		if err != nil {
			return err
		}
		// The one place a secret is logged, on purpose: with an empty
		// database this link is the only way in. It is single-use and
		// expires in 24 hours.
		log.Warn("no CA administrator yet: open the one-time setup link within 24 hours",
			"link", "SETUP LINK "+cfg.BaseURL+"/setup/"+tok)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 120 * time.Second, IdleTimeout: 120 * time.Second}
	app.start(ctx)
	// Start-up work (argon2id hashing of the dev passwords uses 64 MiB each,
	// CA checks, catalogue loading) leaves garbage behind: hand it back to
	// the OS so the idle footprint is what serving needs.
	debug.FreeOSMemory()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("certdesk listening", "addr", ln.Addr().String(), "base_url", cfg.BaseURL, "dev", cfg.Dev)

	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
	}
	app.stop()
	return nil
}
