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
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

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
//	go test ./internal/ordering/ -run '^$' -bench 'Issuance' -benchtime 200x
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
		b.Run("pipeline/"+kind+"-issuer", func(b *testing.B) {
			ctx := context.Background()
			// CERTDESK_BENCH_DB_DIR puts the database elsewhere (e.g. a
			// tmpfs, to see the cost without fsync).
			dbDir := b.TempDir()
			if d := os.Getenv("CERTDESK_BENCH_DB_DIR"); d != "" {
				dbDir, _ = os.MkdirTemp(d, "bench-")
				defer os.RemoveAll(dbDir)
			}
			db, err := store.Open(ctx, filepath.Join(dbDir, "b.db"), clock)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			a, _ := db.CreateAccount(ctx, "Bench")
			u, _ := db.CreateUser(ctx, portal.User{AccountID: a.ID, Email: "req@example.com", Name: "R", Role: portal.RoleUser, PasswordHash: "x"})
			p := &ordering.Pipeline{Store: db, CA: auth, Billing: &fakeSettler{}, Clock: clock, BaseURL: "http://127.0.0.1:8080",
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			ids := make([]int64, b.N)
			now := clock.Now()
			err = db.Tx(ctx, func(tx *sql.Tx) error {
				for i := range ids {
					o := portal.Order{AccountID: a.ID, UserID: u.ID, Product: portal.ProductIndividual, SignatureHash: portal.SHA256,
						PeriodStart: now, PeriodEnd: now.AddDate(1, 0, 0), PaymentMethod: portal.PayContract, AmountCents: 1000,
						AgreementVersion: "b", AgreedAt: now, Recipients: []portal.Recipient{{Email: "jane@example.com",
							CommonName: "jane@example.com", Status: portal.RecipientReady, CSR: csr}}}
					if err := db.InsertOrder(ctx, tx, &o, ""); err != nil {
						return err
					}
					ids[i] = o.Recipients[0].ID
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for _, id := range ids {
				if out, err := p.Issue(ctx, id); err != nil || out != ordering.Issued {
					b.Fatalf("issue: %v %v", out, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
		})
		b.Run("raw/"+kind+"-issuer", func(b *testing.B) {
			signer := loadIssuingKey(b, dir)
			issued, err := auth.Issue(ca.IssueRequest{Product: mustProduct(b, portal.ProductIndividual), Emails: []string{"jane@example.com"},
				PublicKey: key.Public()})
			if err != nil {
				b.Fatal(err)
			}
			tmpl := issued.Certificate
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tmpl.SerialNumber = ca.NewSerial()
				if _, err := x509.CreateCertificate(rand.Reader, tmpl, auth.IssuingCert(), key.Public(), signer); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
		})
	}
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
