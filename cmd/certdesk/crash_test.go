package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"certdesk/internal/portal"
	"certdesk/store"
)

// TestCrashDuringIssuance runs the real binary, keeps several API clients
// ordering certificates (each order issues during its request), SIGKILLs
// the server in the middle, restarts it on the same data directory and
// checks: no row is left 'issuing', no recipient has two live
// certificates, every recorded serial is either an issued certificate that
// verifies or a revoked one on the CRL (a serial that may have been signed
// is never "good" and never lost), and every recipient of an accepted
// order ends up issued (nothing stuck). Three kill/restart rounds.
func TestCrashDuringIssuance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary")
	}
	bin := filepath.Join(t.TempDir(), "certdesk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	resolver := crashDNS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr

	var logs bytes.Buffer
	var logMu sync.Mutex
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(bin, "serve", "--dev", "--addr", addr, "--data-dir", data, "--base-url", base)
		cmd.Env = append(os.Environ(), "CERTDESK_DNS_RESOLVER="+resolver, "CERTDESK_CA_KEY_TYPE=p256")
		w := &lockedWriter{mu: &logMu, w: &logs}
		cmd.Stdout, cmd.Stderr = w, w
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get(base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return cmd
				}
			}
			if time.Now().After(deadline) {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				t.Fatalf("server not ready:\n%s", logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	kill := func(cmd *exec.Cmd) {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_, _ = cmd.Process.Wait()
	}
	defer func() {
		if t.Failed() {
			logMu.Lock()
			out := logs.String()
			logMu.Unlock()
			if len(out) > 20000 {
				out = out[len(out)-20000:]
			}
			t.Logf("server output (tail):\n%s", out)
		}
	}()

	cmd := start()
	out, err := exec.Command(bin, "apikey", "create", "--user", "admin@example.com", "--data-dir", data).CombinedOutput()
	if err != nil {
		kill(cmd)
		t.Fatalf("apikey: %v %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	key := strings.TrimSpace(lines[len(lines)-1])

	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(data, "certdesk.db"), portal.SystemClock{})
	if err != nil {
		kill(cmd)
		t.Fatal(err)
	}
	defer db.Close()
	var orgID int64
	if err := db.QueryRow(`SELECT id FROM organizations WHERE legal_name = 'Example Corp B.V.'`).Scan(&orgID); err != nil {
		kill(cmd)
		t.Fatal(err)
	}

	var seq atomic.Int64
	var accepted atomic.Int64
	order := func(client *http.Client) {
		n := seq.Add(1)
		body, _ := json.Marshal(map[string]any{
			"certificate":    map[string]any{"common_name_indicator": "email_address", "emails": []string{fmt.Sprintf("c%d@example.com", n)}, "csr": crashCSR(t)},
			"organization":   map[string]any{"id": orgID},
			"validity_years": 1, "payment_method": "contract",
		})
		req, _ := http.NewRequest("POST", base+"/api/v1/order/certificate/secure_email_organization", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			return // killed mid-request
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			accepted.Add(1)
		} else if resp.StatusCode >= 500 {
			t.Errorf("order answered %d", resp.StatusCode)
		}
	}

	for round := 0; round < 3; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := &http.Client{Timeout: 10 * time.Second}
				for {
					select {
					case <-stop:
						return
					default:
						order(client)
					}
				}
			}()
		}
		time.Sleep(time.Duration(700+300*round) * time.Millisecond)
		kill(cmd) // SIGKILL while the clients are issuing
		close(stop)
		wg.Wait()
		var issuing int
		db.QueryRow(`SELECT COUNT(*) FROM certificates WHERE status = 'issuing'`).Scan(&issuing)
		t.Logf("round %d: killed with %d rows 'issuing', %d orders accepted so far", round, issuing, accepted.Load())
		cmd = start()
	}
	defer kill(cmd)

	// The restarted server's scheduler recovers and issues at start.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var issuing, waiting int
		db.QueryRow(`SELECT COUNT(*) FROM certificates WHERE status = 'issuing'`).Scan(&issuing)
		db.QueryRow(`SELECT COUNT(*) FROM recipients WHERE status = 'ready'`).Scan(&waiting)
		if issuing == 0 && waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %d rows still 'issuing', %d recipients still ready", issuing, waiting)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// No recipient has two live certificates; every recipient is issued.
	var dup, notIssued, recipients int
	db.QueryRow(`SELECT COUNT(*) FROM (SELECT recipient_id FROM certificates WHERE status = 'issued' GROUP BY recipient_id, plan_period HAVING COUNT(*) > 1)`).Scan(&dup)
	db.QueryRow(`SELECT COUNT(*) FROM recipients WHERE status <> 'issued'`).Scan(&notIssued)
	db.QueryRow(`SELECT COUNT(*) FROM recipients`).Scan(&recipients)
	if dup != 0 || notIssued != 0 {
		t.Errorf("%d recipients with two certificates, %d of %d recipients not issued", dup, notIssued, recipients)
	}
	if int64(recipients) < accepted.Load() {
		t.Errorf("%d accepted orders but %d recipients", accepted.Load(), recipients)
	}

	// Every recorded serial: issued -> its DER has that serial and
	// verifies; revoked -> on the CRL the restarted server serves.
	issuer := crashFetchCert(t, base+"/ca/issuing.crt")
	crl := crashCRL(t, base, issuer)
	rows, err := db.Query(`SELECT serial, status, der, failure FROM certificates`)
	if err != nil {
		t.Fatal(err)
	}
	var issued, revoked, interrupted int
	for rows.Next() {
		var serial, status, failure string
		var der []byte
		if err := rows.Scan(&serial, &status, &der, &failure); err != nil {
			t.Fatal(err)
		}
		switch status {
		case "issued":
			issued++
			c, err := x509.ParseCertificate(der)
			if err != nil || strings.ToUpper(c.SerialNumber.Text(16)) != serial || c.CheckSignatureFrom(issuer) != nil {
				t.Errorf("issued row %s does not hold its certificate", serial)
			}
		case "revoked":
			revoked++
			if strings.HasPrefix(failure, "interrupted") {
				interrupted++
			}
			if !crl[serial] {
				t.Errorf("revoked serial %s (%s) is not on the CRL", serial, failure)
			}
		default:
			t.Errorf("serial %s left %s (%s)", serial, status, failure)
		}
	}
	rows.Close()
	t.Logf("%d orders accepted, %d recipients, %d issued, %d revoked (%d interrupted by a kill)", accepted.Load(), recipients, issued, revoked, interrupted)
	if issued == 0 {
		t.Fatal("nothing was issued: the test proves nothing")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// crashDNS answers NXDOMAIN for every name on 127.0.0.1 (no CAA records:
// issuance allowed; nothing leaves the machine).
func crashDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

func crashCSR(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Error(err)
		return ""
	}
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func crashGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return b
}

func crashFetchCert(t *testing.T, url string) *x509.Certificate {
	c, err := x509.ParseCertificate(crashGet(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func crashCRL(t *testing.T, base string, issuer *x509.Certificate) map[string]bool {
	// The CRL URL (with the issuing CA's id) is linked from /ca.
	page := string(crashGet(t, base+"/ca"))
	i := strings.Index(page, base+"/crl/")
	if i < 0 {
		t.Fatal("no CRL link on /ca")
	}
	url := page[i:]
	url = url[:strings.Index(url, ".crl")+4]
	crl, err := x509.ParseRevocationList(crashGet(t, url))
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		out[strings.ToUpper(new(big.Int).Set(e.SerialNumber).Text(16))] = true
	}
	return out
}
