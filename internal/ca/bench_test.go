package ca

import (
	"crypto/rand"
	"crypto/x509"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"

	"certdesk/internal/portal"
)

// BenchmarkIssue measures a full Issue (template, key checks, TBS capture,
// zlint, own checks, real signature and its check, TBS comparison) with an RSA-2048
// subscriber key; BenchmarkRawCreateCertificate signs the same template
// with plain x509.CreateCertificate. Their ratio is the cost of
// lint-before-sign.
//
//	go test ./internal/ca/ -run '^$' -bench 'Issue|RawCreate' -benchtime 2s
func BenchmarkIssue(b *testing.B) {
	for _, kind := range []string{KeyRSA2048, KeyP256} {
		b.Run(kind+"-issuer", func(b *testing.B) {
			a := testCA(b, kind)
			req := requestFor(mustProduct(b, portal.ProductBusiness), subscriberKeys()["rsa2048"].Public())
			if _, err := a.Issue(req); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := a.Issue(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRawCreateCertificate(b *testing.B) {
	for _, kind := range []string{KeyRSA2048, KeyP256} {
		b.Run(kind+"-issuer", func(b *testing.B) {
			a := testCA(b, kind)
			req := requestFor(mustProduct(b, portal.ProductBusiness), subscriberKeys()["rsa2048"].Public())
			tmpl, err := a.buildTemplate(req)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := x509.CreateCertificate(rand.Reader, tmpl, a.issuer, req.PublicKey, a.signer); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLintOnly is the zlint run alone on a finished certificate
// (lintDER); BenchmarkLintZlintEx is zlint.LintCertificateEx with the same
// registry on the same certificate, which lintDER replaced.
func BenchmarkLintZlintEx(b *testing.B) {
	a := testCA(b, KeyP256)
	is, err := a.Issue(requestFor(mustProduct(b, portal.ProductBusiness), subscriberKeys()["rsa2048"].Public()))
	if err != nil {
		b.Fatal(err)
	}
	reg, err := lintRegistry()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		zc, err := zx509.ParseCertificate(is.DER)
		if err != nil {
			b.Fatal(err)
		}
		zlint.LintCertificateEx(zc, reg)
	}
}

func BenchmarkLintOnly(b *testing.B) {
	a := testCA(b, KeyP256)
	is, err := a.Issue(requestFor(mustProduct(b, portal.ProductBusiness), subscriberKeys()["rsa2048"].Public()))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := lintDER(is.DER); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIssueStages splits Issue into its stages (per certificate):
//
//	template   buildTemplate (includes the subscriber key's weak-key checks)
//	tbs        x509.CreateCertificate up to the capture of the TBS
//	lint       lintTBS: assemble, crypto/x509 parse, zlint (zcrypto parse + lints), own checks
//	zparse     zcrypto's ParseCertificate alone (part of lint)
//	sign       signTBS: CA signature, assembly, parse, signature check
//
//	go test ./internal/ca/ -run '^$' -bench 'IssueStages' -benchtime 2000x
func BenchmarkIssueStages(b *testing.B) {
	for _, kind := range []string{KeyRSA2048, KeyP256} {
		a := testCA(b, kind)
		req := requestFor(mustProduct(b, portal.ProductIndividual), subscriberKeys()["rsa2048"].Public())
		tmpl, err := a.buildTemplate(req)
		if err != nil {
			b.Fatal(err)
		}
		tbs, err := a.lintedTBS(tmpl, req.PublicKey)
		if err != nil {
			b.Fatal(err)
		}
		lintCert, _ := assembleCertificate(tbs, staticSignature(a.issuer.PublicKey))
		b.Run(kind+"-issuer/template", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := a.buildTemplate(req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"-issuer/tbs", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := a.tbsFor(tmpl, req.PublicKey); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"-issuer/lint", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := a.lintTBS(tbs); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"-issuer/zparse", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := zx509.ParseCertificate(lintCert); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"-issuer/sign", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := a.signTBS(tbs, tmpl.SignatureAlgorithm); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(kind+"-issuer/raw", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := x509.CreateCertificate(rand.Reader, tmpl, a.issuer, req.PublicKey, a.signer); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
