package ordering_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"certdesk/internal/ca"
	"certdesk/internal/ordering"
	"certdesk/internal/portal"
	"certdesk/store"
)

// The issuance pipeline against raw x509.CreateCertificate, in the same
// run, for an RSA-2048 and a P-256 issuing CA (RSA-2048 subscriber key).
// The pipeline is everything a real issuance does: load recipient, order,
// user; CSR intake policy (weak-key checks); intent transaction; build,
// lint (zlint) and sign; completion transaction (certificate, recipient,
// settle, two emails with attachments, order completion) on a SQLite file
// with synchronous=FULL. Raw is CreateCertificate of the same leaf.
//
//	pipeline-serial    Issue, one recipient after the other (two transactions each)
//	pipeline-batch     IssueRecipients: batches of 64, one intent and one completion
//	                   transaction per batch, lint and sign on GOMAXPROCS workers
//	raw-serial         CreateCertificate in one goroutine
//	raw-parallel       CreateCertificate on GOMAXPROCS goroutines
//
// Compare pipeline-serial with raw-serial and pipeline-batch (parallel)
// with raw-parallel only. The ratios of one run are printed at the end,
// with the CPU time (user + system of the whole process) per certificate:
// other programs on the machine change the rates, much less the CPU time.
//
//	go test ./internal/ordering/ -run '^$' -bench 'Issuance' -benchtime 300x
func BenchmarkIssuance(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "b"}}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
	for _, kind := range []string{ca.KeyRSA2048, ca.KeyP256} {
		clock := portal.SystemClock{}
		dir := b.TempDir()
		auth, err := ca.Init(dir, ca.InitOptions{Config: ca.Config{BaseURL: "http://127.0.0.1:8080", AllowInternalNames: true},
			IssuingKeyType: kind}, clock)
		if err != nil {
			b.Fatal(err)
		}
		rate := map[string]float64{}
		cpu := map[string]float64{} // CPU µs per certificate (user + system, whole process)
		pipeline := func(name string, run func(ctx context.Context, p *ordering.Pipeline, ids []int64)) {
			perOrder := 1
			if name == "pipeline-batch-orders-of-1000" {
				perOrder = 1000
			}
			b.Run(name+"/"+kind+"-issuer", func(b *testing.B) {
				ctx := context.Background()
				p, ids := benchPipeline(b, auth, clock, csr, perOrder)
				b.ResetTimer()
				c0 := cpuTime()
				run(ctx, p, ids)
				b.StopTimer()
				cpu[name] = float64((cpuTime() - c0).Microseconds()) / float64(b.N)
				b.ReportMetric(cpu[name], "cpu-µs/cert")
				for _, id := range ids {
					if st := recipientStatus(b, p, id); st != portal.RecipientIssued {
						b.Fatalf("recipient %d is %s", id, st)
					}
				}
				rate[name] = float64(b.N) / b.Elapsed().Seconds()
				b.ReportMetric(rate[name], "certs/s")
			})
		}
		pipeline("pipeline-serial", func(ctx context.Context, p *ordering.Pipeline, ids []int64) {
			for _, id := range ids {
				if out, err := p.Issue(ctx, id); err != nil || out != ordering.Issued {
					b.Fatalf("issue: %v %v", out, err)
				}
			}
		})
		batch := func(ctx context.Context, p *ordering.Pipeline, ids []int64) {
			if n := p.IssueRecipients(ctx, ids); n != len(ids) {
				b.Fatalf("issued %d of %d", n, len(ids))
			}
		}
		pipeline("pipeline-batch", batch)
		// The same with the recipients in orders of 1,000 (one customer
		// ordering for a whole company): recipients share order rows.
		pipeline("pipeline-batch-orders-of-1000", batch)
		signer := loadIssuingKey(b, dir)
		issued, err := auth.Issue(ca.IssueRequest{Product: mustProduct(b, portal.ProductIndividual), Emails: []string{"jane@example.com"},
			PublicKey: key.Public()})
		if err != nil {
			b.Fatal(err)
		}
		b.Run("raw-serial/"+kind+"-issuer", func(b *testing.B) {
			tmpl := *issued.Certificate
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				tmpl.SerialNumber = ca.NewSerial()
				if _, err := x509.CreateCertificate(rand.Reader, &tmpl, auth.IssuingCert(), key.Public(), signer); err != nil {
					b.Fatal(err)
				}
			}
			cpu["raw-serial"] = float64((cpuTime() - c0).Microseconds()) / float64(b.N)
			b.ReportMetric(cpu["raw-serial"], "cpu-µs/cert")
			rate["raw-serial"] = float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate["raw-serial"], "certs/s")
		})
		b.Run("raw-parallel/"+kind+"-issuer", func(b *testing.B) {
			workers := runtime.GOMAXPROCS(0)
			c0 := cpuTime()
			var next atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tmpl := *issued.Certificate
					for next.Add(1) <= int64(b.N) {
						tmpl.SerialNumber = ca.NewSerial()
						if _, err := x509.CreateCertificate(rand.Reader, &tmpl, auth.IssuingCert(), key.Public(), signer); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			cpu["raw-parallel"] = float64((cpuTime() - c0).Microseconds()) / float64(b.N)
			b.ReportMetric(cpu["raw-parallel"], "cpu-µs/cert")
			rate["raw-parallel"] = float64(b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate["raw-parallel"], "certs/s")
		})
		if rate["raw-serial"] > 0 && rate["raw-parallel"] > 0 {
			fmt.Printf("# %s issuer, GOMAXPROCS %d: pipeline-serial %.0f/s = %.0f%% of raw-serial %.0f/s; pipeline-batch %.0f/s = %.0f%% of raw-parallel %.0f/s; "+
				"CPU per certificate: pipeline-batch %.0f µs, raw %.0f µs (raw/pipeline %.0f%%)\n",
				kind, runtime.GOMAXPROCS(0), rate["pipeline-serial"], 100*rate["pipeline-serial"]/rate["raw-serial"], rate["raw-serial"],
				rate["pipeline-batch"], 100*rate["pipeline-batch"]/rate["raw-parallel"], rate["raw-parallel"],
				cpu["pipeline-batch"], cpu["raw-parallel"], 100*cpu["raw-parallel"]/cpu["pipeline-batch"])
		}
	}
}

// benchPipeline makes a database (synchronous=FULL, in a temporary
// directory on disk unless CERTDESK_BENCH_DB_DIR names another place, e.g.
// a tmpfs to see the cost without fsync) with b.N ready recipients in
// orders of perOrder recipients.
func benchPipeline(b *testing.B, auth *ca.Authority, clock portal.Clock, csr string, perOrder int) (*ordering.Pipeline, []int64) {
	ctx := context.Background()
	dbDir := b.TempDir()
	if d := os.Getenv("CERTDESK_BENCH_DB_DIR"); d != "" {
		dbDir, _ = os.MkdirTemp(d, "bench-")
		b.Cleanup(func() { os.RemoveAll(dbDir) })
	}
	db, err := store.Open(ctx, filepath.Join(dbDir, "b.db"), clock)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	a, _ := db.CreateAccount(ctx, "Bench")
	u, _ := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "req@example.com", Name: "R", Role: portal.RoleUser, PasswordHash: "x"})
	p := &ordering.Pipeline{Store: db, CA: auth, Billing: &fakeSettler{}, Clock: clock, BaseURL: "http://127.0.0.1:8080",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Mailboxes: testValidation(db, clock)}
	ids := make([]int64, b.N)
	now := clock.Now()
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		for i := 0; i < len(ids); i += perOrder {
			n := min(perOrder, len(ids)-i)
			o := portal.Order{AccountID: a.ID, UserID: u.ID, Product: portal.ProductIndividual, SignatureHash: portal.SHA256,
				PeriodStart: now, PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 1000 * int64(n),
				AgreementVersion: "b", AgreedAt: now}
			for j := 0; j < n; j++ {
				o.Recipients = append(o.Recipients, portal.Recipient{Email: fmt.Sprintf("jane%d@example.com", j),
					CommonName: "jane@example.com", Status: portal.RecipientReady, CSR: csr})
			}
			if err := db.InsertOrder(ctx, tx, &o, ""); err != nil {
				return err
			}
			for j := range o.Recipients {
				ids[i+j] = o.Recipients[j].ID
			}
		}
		// Each address's mailbox validation (re-checked at issuance, SBR 4.2.1).
		ts := now.UTC().Format("2006-01-02T15:04:05.000000000Z")
		for j := 0; j < min(perOrder, len(ids)); j++ {
			em := fmt.Sprintf("jane%d@example.com", j)
			if _, err := tx.ExecContext(ctx, `INSERT INTO mailbox_validations(account_id, email, token_hash, created_at, expires_at, used_at, validated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, a.ID, em, "bench-"+em, ts, ts, ts, ts); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return p, ids
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func recipientStatus(b *testing.B, p *ordering.Pipeline, id int64) portal.RecipientStatus {
	r, err := p.Store.Recipient(context.Background(), nil, id)
	if err != nil {
		b.Fatal(err)
	}
	return r.Status
}

func mustProduct(b *testing.B, id portal.ProductID) portal.Product {
	p, ok := portal.ProductByID(id)
	if !ok {
		b.Fatal(id)
	}
	return p
}

func loadIssuingKey(b *testing.B, dir string) crypto.Signer {
	raw, err := os.ReadFile(filepath.Join(dir, ca.IssuingKeyFile))
	if err != nil {
		b.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	return k.(crypto.Signer)
}
