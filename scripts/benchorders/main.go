// Command benchorders is the orders API load test of `make bench`: it
// places orders of 10 recipients through POST /api/v1/order/certificate
// from 32 concurrent clients against the real handler stack (Echo
// middleware, X-API-Key, the ordering service with the real billing
// service, the KeyGen link service) on a real SQLite file in a temporary
// directory, served over TCP on 127.0.0.1. It stops after -n orders or
// -duration, whichever comes first, and reports orders/s, latency
// percentiles, errors and the number of SQLITE_BUSY errors the server
// logged; it exits 1 when a request failed or SQLITE_BUSY was logged.
//
// Every recipient is on the validated domain of the validated
// organization and has no CSR ("generate in the browser"), so each order
// commits the order, its 10 recipients, the contract commitment, 10
// KeyGen links and their 10 emails in one transaction. The services are
// wired as cmd/certdesk/wire.go wires them, except the validation
// service (never called for these orders) and the CA pipeline (nothing
// is ready to issue; a stand-in issuer fails the run if asked).
//
//	go run ./scripts/benchorders                    # 3000 orders, 32 clients, at most 60 s
//	go run ./scripts/benchorders -cpuprofile cpu.out
//	go run ./scripts/benchorders -keygen=false      # without KeyGen links (before they were wired)
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"certdesk/handlers"
	"certdesk/internal/billing"
	"certdesk/internal/ca"
	"certdesk/internal/identity"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
)

func main() {
	n := flag.Int("n", 3000, "orders to place (the run also stops at -duration)")
	clients := flag.Int("c", 32, "concurrent API clients")
	recipients := flag.Int("recipients", 10, "recipients per order")
	duration := flag.Duration("duration", 60*time.Second, "longest run")
	keygen := flag.Bool("keygen", true, "send KeyGen links (a link and an email per recipient, as wired in the server)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run (server and clients) to this file")
	keep := flag.Bool("keep", false, "keep the temporary data directory")
	strict := flag.Bool("strict", true, "exit 1 when any request failed or SQLITE_BUSY was logged")
	flag.Parse()
	if err := run(*n, *clients, *recipients, *duration, *keygen, *cpuprofile, *keep, *strict); err != nil {
		fmt.Fprintln(os.Stderr, "benchorders:", err)
		os.Exit(1)
	}
}

// logScan counts the server's error log lines and the SQLITE_BUSY among
// them; the server logs every 5xx with its error.
type logScan struct {
	mu       sync.Mutex
	errors   int
	busy     int
	partial  []byte
	firstErr string
}

func (l *logScan) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if strings.Contains(line, "level=ERROR") {
			l.errors++
			if l.firstErr == "" {
				l.firstErr = line
			}
		}
		if strings.Contains(line, "SQLITE_BUSY") || strings.Contains(line, "database is locked") {
			l.busy++
		}
	}
	return len(p), nil
}

// noValidator starts no validation: every recipient is on the validated
// domain of the validated organization, so the ordering service never
// asks for one (as cmd/certdesk/wire_stubs.go).
type noValidator struct{}

func (noValidator) SubmitOrgForOrder(context.Context, *sql.Tx, int64, int64, int64) error { return nil }
func (noValidator) StartDomainEmailForOrder(context.Context, *sql.Tx, int64, int64, string, int64, string) error {
	return nil
}
func (noValidator) StartMailboxForOrder(context.Context, *sql.Tx, int64, string, int64, string) error {
	return nil
}
func (noValidator) MailboxValidated(context.Context, portal.Querier, int64, string) (bool, error) {
	return false, nil
}

// noIssuer stands in for the CA pipeline: no recipient of these orders
// is ready to issue, so it is never asked (a call fails the run).
type noIssuer struct{ calls atomic.Int64 }

func (i *noIssuer) IssueRecipient(context.Context, int64) error {
	i.calls.Add(1)
	return errors.New("benchorders: nothing should be ready to issue")
}

type fixture struct {
	key   string
	orgID int64
}

// setup makes the demo account: a validated organization with the
// validated domain example.com, a contract with room for every order,
// and an API key.
func setup(ctx context.Context, db *store.DB, bill *billing.Service, clock portal.Clock) (fixture, error) {
	a, err := db.CreateAccount(ctx, "Example Corp")
	if err != nil {
		return fixture{}, err
	}
	u, err := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "admin@example.com", Name: "Alex Admin", Role: portal.RoleAccountAdmin, PasswordHash: "-"})
	if err != nil {
		return fixture{}, err
	}
	now := clock.Now()
	org := portal.Organization{AccountID: a.ID, LegalName: "Example Corp B.V.", Address: "Herengracht 1", City: "Amsterdam",
		PostalCode: "1015 BA", Country: "NL", Phone: "+31 20 555 0100", Registration: "NTRNL-12345678",
		OrgContact: portal.Contact{Name: "Alex Admin", Email: "admin@example.com"}, TechContact: portal.Contact{Name: "Tess Tech", Email: "tech@example.com"},
		Status: portal.OrgDraft, CreatedAt: now}
	if err := db.InsertOrg(ctx, nil, &org, "en"); err != nil {
		return fixture{}, err
	}
	if err := db.SetOrgValidated(ctx, nil, org.ID, now, now.Add(portal.OrgValidationReuse), "bench", ""); err != nil {
		return fixture{}, err
	}
	d := portal.Domain{AccountID: a.ID, OrganizationID: org.ID, Name: "example.com", Method: portal.DCVDNSTXT,
		RandomValue: portal.NewToken(), ValueExpiresAt: now.Add(portal.DomainValueLifetime), CreatedAt: now}
	if err := db.InsertDomain(ctx, nil, &d, "en"); err != nil {
		return fixture{}, err
	}
	if err := db.SetDomainValidated(ctx, nil, d.ID, now, now.Add(portal.DomainValidationReuse), "dns_txt"); err != nil {
		return fixture{}, err
	}
	if err := bill.SetContract(ctx, billing.Contract{AccountID: a.ID, Reference: "C-BENCH", Active: true, LimitCents: 1 << 50}); err != nil {
		return fixture{}, err
	}
	key, _, err := db.CreateAPIKey(ctx, a.ID, u.ID, "bench")
	if err != nil {
		return fixture{}, err
	}
	return fixture{key: key, orgID: org.ID}, nil
}

func run(total, clients, perOrder int, maxDur time.Duration, keygen bool, cpuprofile string, keep, strict bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "certdesk-benchorders-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("data directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	clock := portal.SystemClock{}
	db, err := store.Open(ctx, filepath.Join(dir, "certdesk.db"), clock)
	if err != nil {
		return err
	}
	defer db.Close()
	scan := &logScan{}
	log := slog.New(slog.NewTextHandler(scan, &slog.HandlerOptions{Level: slog.LevelInfo}))
	bill := billing.NewService(db, billing.NewTestGateway(clock), clock)
	osvc := &ordering.Service{Store: db, Billing: billing.ForOrdering(bill), Validator: noValidator{}, Issuer: &noIssuer{},
		ParseCSR: ca.ParseCSR, Clock: clock, Log: log}
	fx, err := setup(ctx, db, bill, clock)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	if keygen {
		osvc.KeyGen = &ordering.LinkService{Store: db, Clock: clock, BaseURL: base, Log: log}
	}
	keys := [][]byte{make([]byte, 64), make([]byte, 32)}
	for _, k := range keys {
		_, _ = rand.Read(k)
	}
	srv := handlers.New(handlers.Config{BaseURL: base}, handlers.Deps{DB: db, Identity: &identity.Service{Store: db, Clock: clock},
		Clock: clock, Log: log, SessionKeys: keys, Ordering: osvc, Billing: bill})
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	url := base + "/api/v1/order/certificate/secure_email_sponsor"

	body := func(i int) []byte {
		var certs []map[string]any
		for r := 0; r < perOrder; r++ {
			certs = append(certs, map[string]any{"common_name_indicator": "name", "common_name": fmt.Sprintf("User %d.%d", i, r),
				"emails": []string{fmt.Sprintf("user%d.%d@example.com", i, r)}})
		}
		b, _ := json.Marshal(map[string]any{"certificates": certs, "organization": map[string]any{"id": fx.orgID},
			"validity_years": 1, "payment_method": "contract"})
		return b
	}

	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var next atomic.Int64
	var failed atomic.Int64
	lat := make([][]time.Duration, clients)
	var sampleMu sync.Mutex
	samples := map[string]int{}
	deadline := time.Now().Add(maxDur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > total || time.Now().After(deadline) {
					return
				}
				b := body(i)
				req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(handlers.APIKeyHeader, fx.key)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", i))
				t0 := time.Now()
				resp, err := hc.Do(req)
				var status int
				var rb []byte
				if err == nil {
					rb, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				lat[w] = append(lat[w], time.Since(t0))
				if err != nil || status != http.StatusCreated {
					failed.Add(1)
					what := fmt.Sprintf("HTTP %d %.160s", status, rb)
					if err != nil {
						what = err.Error()
					}
					sampleMu.Lock()
					samples[what]++
					sampleMu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if cpuprofile != "" {
		pprof.StopCPUProfile()
	}

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	var stored, storedRecipients int
	if err := db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&stored); err != nil {
		return err
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM recipients`).Scan(&storedRecipients); err != nil {
		return err
	}
	ok := len(all) - int(failed.Load())
	scan.mu.Lock()
	busy, logErrs, firstErr := scan.busy, scan.errors, scan.firstErr
	scan.mu.Unlock()

	mode := "no CSR, KeyGen links sent"
	if !keygen {
		mode = "no CSR, no KeyGen links"
	}
	fmt.Printf("orders API: %d orders x %d recipients (%s), %d clients, Go %s, %d CPUs (%s/%s)\n",
		len(all), perOrder, mode, clients, strings.TrimPrefix(runtime.Version(), "go"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("  time         %.2f s\n", elapsed.Seconds())
	fmt.Printf("  orders/s     %.0f  (%.0f certificates/s)\n", float64(ok)/elapsed.Seconds(), float64(ok*perOrder)/elapsed.Seconds())
	fmt.Printf("  latency      p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", ms(pct(0.50)), ms(pct(0.90)), ms(pct(0.99)), ms(pct(1)))
	fmt.Printf("  errors       %d  (server error log lines: %d)\n", failed.Load(), logErrs)
	fmt.Printf("  SQLITE_BUSY  %d\n", busy)
	fmt.Printf("  stored       %d orders, %d recipients\n", stored, storedRecipients)
	if txs, callers, busy := db.GroupStats(); txs > 0 {
		fmt.Printf("  group commit %d submissions in %d transactions (%.1f per commit); writer busy %.2f ms per order (%.0f%% of the run)\n",
			callers, txs, float64(callers)/float64(txs), ms(busy)/float64(callers), 100*busy.Seconds()/elapsed.Seconds())
	}
	for what, n := range samples {
		fmt.Printf("  error x%d: %s\n", n, what)
	}
	if firstErr != "" {
		fmt.Printf("  first server error: %.300s\n", firstErr)
	}
	var links, mails int
	if err := db.QueryRow(`SELECT COUNT(*) FROM keygen_links`).Scan(&links); err != nil {
		return err
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&mails); err != nil {
		return err
	}
	fmt.Printf("  KeyGen       %d links, %d emails queued\n", links, mails)
	if n := osvc.Issuer.(*noIssuer).calls.Load(); n > 0 {
		return fmt.Errorf("the issuer was asked %d times", n)
	}
	if stored != ok || storedRecipients != ok*perOrder {
		return fmt.Errorf("%d orders answered 201 but %d stored with %d recipients", ok, stored, storedRecipients)
	}
	if strict && (failed.Load() > 0 || busy > 0) {
		return errors.New("requests failed or SQLITE_BUSY was logged")
	}
	if float64(ok)/elapsed.Seconds() < 300 {
		fmt.Println("  below the target of 300 orders/s")
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
