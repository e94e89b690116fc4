package ca

import (
	"crypto/rand"
	"crypto/x509"
	"testing"

	"certdesk/internal/portal"
)

// BenchmarkIssue measures a full Issue (template, key checks, lint copy,
// zlint, own checks, real signature, TBS comparison) with an RSA-2048
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

// BenchmarkLintOnly is the zlint run alone on a finished certificate.
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
