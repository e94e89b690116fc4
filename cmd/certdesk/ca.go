package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"certdesk/internal/ca"
	"certdesk/internal/portal"
)

// cmdCA: the CA material in <data-dir>/ca.
//
//	certdesk ca init   [--key-type rsa2048|p256|p384] [--org NAME] [--country CC] [--base-url URL]
//	certdesk ca import --cert FILE --key FILE
//
// init makes a P-384 root and an S/MIME issuing CA (keys 0600); serve does
// the same on its first start when the directory is empty. import stores
// an existing issuing CA (certificate PEM, optionally followed by its chain
// up to the root) and its private key. Neither overwrites existing material.
func cmdCA(args []string) error {
	const usageText = "usage: certdesk ca init [--key-type rsa2048|p256|p384] [--org NAME] [--country CC] [--base-url URL]\n" +
		"       certdesk ca import --cert FILE --key FILE"
	if len(args) == 0 {
		return errors.New(usageText)
	}
	var cfg Config
	fs := flag.NewFlagSet("ca "+args[0], flag.ContinueOnError)
	commonFlags(fs, &cfg)
	switch args[0] {
	case "init":
		var opts ca.InitOptions
		fs.StringVar(&opts.IssuingKeyType, "key-type", envDefault("CERTDESK_CA_KEY_TYPE", ca.KeyRSA2048), "issuing CA key: rsa2048, p256 or p384 [CERTDESK_CA_KEY_TYPE]")
		fs.StringVar(&opts.Organization, "org", envDefault("CERTDESK_CA_ORG", "certdesk"), "organization in the CA subjects [CERTDESK_CA_ORG]")
		fs.StringVar(&opts.Country, "country", envDefault("CERTDESK_CA_COUNTRY", "NL"), "country in the CA subjects [CERTDESK_CA_COUNTRY]")
		fs.StringVar(&cfg.BaseURL, "base-url", envDefault("CERTDESK_BASE_URL", "http://127.0.0.1:8080"), "public base URL of the portal [CERTDESK_BASE_URL]")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		opts.Config = caConfig(&cfg)
		dir := caDir(&cfg)
		if _, err := os.Stat(filepath.Join(dir, ca.IssuingCertFile)); err == nil {
			return fmt.Errorf("%s already holds a CA; refusing to overwrite it", dir)
		}
		a, err := ca.Init(dir, opts, portal.SystemClock{})
		if err != nil {
			return err
		}
		fmt.Printf("CA created in %s\nroot:    %s\nissuing: %s\nCRL:     %s\nOCSP:    %s\n", dir,
			a.RootCert().Subject, a.IssuingCert().Subject, a.CRLURL(), a.OCSPURL())
		return nil
	case "import":
		var certFile, keyFile string
		fs.StringVar(&certFile, "cert", "", "issuing CA certificate (PEM), optionally followed by its chain")
		fs.StringVar(&keyFile, "key", "", "issuing CA private key (PEM, PKCS#8, PKCS#1 or SEC 1)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if certFile == "" || keyFile == "" {
			return errors.New("--cert and --key are required\n" + usageText)
		}
		certPEM, err := os.ReadFile(certFile)
		if err != nil {
			return err
		}
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			return err
		}
		dir := caDir(&cfg)
		if err := ca.Import(dir, certPEM, keyPEM); err != nil {
			return err
		}
		fmt.Printf("issuing CA imported into %s\n", dir)
		return nil
	}
	return errors.New(usageText)
}

// caDir is where the CA keeps its certificates and keys.
func caDir(cfg *Config) string { return filepath.Join(cfg.DataDir, "ca") }

// caConfig derives the CA's settings from the portal's:
//
//	CERTDESK_CA_BASE_URL                  base of the CRL, OCSP and CA certificate URLs put in
//	                                      certificates (default: the portal base URL with http://,
//	                                      SBR 7.1.2.3 b, c allow only http)
//	CERTDESK_CA_ALLOW_INTERNAL_NAMES=1    accept a base URL on localhost, an IP or *.test
//	                                      (development; on by default with --dev)
func caConfig(cfg *Config) ca.Config {
	base := strings.TrimSpace(os.Getenv("CERTDESK_CA_BASE_URL"))
	if base == "" {
		base = cfg.BaseURL
		if strings.HasPrefix(strings.ToLower(base), "https://") {
			base = "http://" + base[len("https://"):]
		}
	}
	return ca.Config{BaseURL: base, AllowInternalNames: cfg.Dev || envBool("CERTDESK_CA_ALLOW_INTERNAL_NAMES", false) || loopbackURL(base)}
}

// loopbackURL reports whether a URL names this machine (localhost or a
// loopback address). Certificates can only point their CRL and OCSP URLs
// there when the portal is tried out locally; the start-up log warns
// (see wireCA), since such certificates are not fit for public trust.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsLoopback()
}
