package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
)

// Config is read from flags, each with an environment variable fallback.
type Config struct {
	Addr     string
	DataDir  string
	BaseURL  string
	SMTPURL  string
	MailFrom string
	Dev      bool
	LogLevel string
}

// envDefault returns the environment variable's value or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envBool(name string, def bool) bool {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	v = strings.ToLower(v)
	return v == "1" || v == "true" || v == "yes"
}

// commonFlags registers the flags every command shares.
func commonFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.DataDir, "data-dir", envDefault("CERTDESK_DATA_DIR", "./data"), "data directory (database, keys) [CERTDESK_DATA_DIR]")
	fs.BoolVar(&c.Dev, "dev", envBool("CERTDESK_DEV", false), "development mode: demo data, dev mailbox [CERTDESK_DEV=1]")
	fs.StringVar(&c.LogLevel, "log-level", envDefault("CERTDESK_LOG_LEVEL", "info"), "log level: debug, info, warn, error [CERTDESK_LOG_LEVEL]")
}

func serveFlags(fs *flag.FlagSet, c *Config) {
	commonFlags(fs, c)
	fs.StringVar(&c.Addr, "addr", envDefault("CERTDESK_ADDR", "127.0.0.1:8080"), "listen address [CERTDESK_ADDR]")
	fs.StringVar(&c.BaseURL, "base-url", envDefault("CERTDESK_BASE_URL", ""), "public base URL, e.g. https://certs.example.com (default http://ADDR) [CERTDESK_BASE_URL]")
	fs.StringVar(&c.SMTPURL, "smtp-url", envDefault("CERTDESK_SMTP_URL", ""), "SMTP server, smtp://host:port (empty: dev mailbox) [CERTDESK_SMTP_URL]")
	fs.StringVar(&c.MailFrom, "mail-from", envDefault("CERTDESK_MAIL_FROM", "certdesk <noreply@localhost>"), "From address of outgoing mail [CERTDESK_MAIL_FROM]")
}

func (c *Config) dbPath() string { return filepath.Join(c.DataDir, "certdesk.db") }

func (c *Config) normalize() {
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Addr
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
}
