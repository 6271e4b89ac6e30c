package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/custos-dev/custos/internal/mail"
)

// smtpFlags configure the operator's SMTP server, which sends breach
// notifications to tenants' security contacts.
type smtpFlags struct {
	host, user, password, passwordFile, from, tls, caFile string
	port                                                  int
}

func (f *smtpFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	port, _ := strconv.Atoi(env(getenv, "CUSTOS_SMTP_PORT", "587"))
	fs.StringVar(&f.host, "smtp-host", env(getenv, "CUSTOS_SMTP_HOST", ""), "SMTP server for breach notifications to tenants' security contacts (CUSTOS_SMTP_HOST; none: e-mails wait)")
	fs.IntVar(&f.port, "smtp-port", port, "SMTP port (CUSTOS_SMTP_PORT)")
	fs.StringVar(&f.user, "smtp-user", env(getenv, "CUSTOS_SMTP_USER", ""), "SMTP user name, PLAIN auth (CUSTOS_SMTP_USER)")
	fs.StringVar(&f.password, "smtp-password", env(getenv, "CUSTOS_SMTP_PASSWORD", ""), "SMTP password (CUSTOS_SMTP_PASSWORD; prefer --smtp-password-file)")
	fs.StringVar(&f.passwordFile, "smtp-password-file", env(getenv, "CUSTOS_SMTP_PASSWORD_FILE", ""), "file holding the SMTP password (CUSTOS_SMTP_PASSWORD_FILE)")
	fs.StringVar(&f.from, "smtp-from", env(getenv, "CUSTOS_SMTP_FROM", ""), "sender address of breach notifications (CUSTOS_SMTP_FROM)")
	fs.StringVar(&f.tls, "smtp-tls", env(getenv, "CUSTOS_SMTP_TLS", "starttls"), "starttls (required), tls (implicit) or none (local test server only) (CUSTOS_SMTP_TLS)")
	fs.StringVar(&f.caFile, "smtp-ca-file", env(getenv, "CUSTOS_SMTP_CA_FILE", ""), "PEM file of CA certificates the SMTP server's certificate is checked against (CUSTOS_SMTP_CA_FILE; default the system pool)")
}

// config returns the mail configuration, nil when no host is given.
func (f *smtpFlags) config() (*mail.Config, error) {
	if f.host == "" {
		if f.from != "" || f.user != "" {
			return nil, errors.New("--smtp-from and --smtp-user need --smtp-host")
		}
		return nil, nil
	}
	c := &mail.Config{Host: f.host, Port: f.port, Username: f.user, Password: f.password, From: f.from, TLS: f.tls}
	switch {
	case f.port <= 0 || f.port > 65535:
		return nil, fmt.Errorf("--smtp-port %d is not a port", f.port)
	case !strings.Contains(f.from, "@"):
		return nil, fmt.Errorf("--smtp-from %q must be an e-mail address (required with --smtp-host)", f.from)
	case f.tls != "starttls" && f.tls != "tls" && f.tls != "none":
		return nil, fmt.Errorf("--smtp-tls %q must be starttls, tls or none", f.tls)
	case f.password != "" && f.passwordFile != "":
		return nil, errors.New("give --smtp-password or --smtp-password-file, not both")
	}
	if f.passwordFile != "" {
		b, err := os.ReadFile(f.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("--smtp-password-file: %w", err)
		}
		c.Password = strings.TrimSpace(string(b))
	}
	if f.caFile != "" {
		b, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--smtp-ca-file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--smtp-ca-file %s holds no PEM certificate", f.caFile)
		}
	}
	return c, nil
}
