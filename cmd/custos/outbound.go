package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/custos-dev/custos/internal/mail"
	"github.com/custos-dev/custos/internal/netguard"
	"github.com/custos-dev/custos/internal/webhook"
)

// outboundFlags configure the SSRF guard every outbound connection goes
// through.
type outboundFlags struct {
	allow  string
	maxAge time.Duration
}

func (f *outboundFlags) register(fs *flag.FlagSet, e envDefaults) {
	fs.StringVar(&f.allow, "outbound-allow", env(e.getenv, "CUSTOS_OUTBOUND_ALLOW", ""),
		"comma-separated CIDRs, addresses or host names that outbound calls (webhooks, recipients, OpenDSR, tenant SMTP) may reach although internal; "+
			"by default loopback, private, link-local, CGNAT, multicast and other special addresses are refused; for development and tests, e.g. 127.0.0.0/8,::1 (CUSTOS_OUTBOUND_ALLOW)")
	fs.DurationVar(&f.maxAge, "outbox-max-age", e.duration("CUSTOS_OUTBOX_MAX_AGE", webhook.DefaultMaxAge), "how long an undelivered webhook, callback or recipient notice is retried before it is given up and recorded as failed (CUSTOS_OUTBOX_MAX_AGE)")
}

// guard returns the guard of the flags.
func (f *outboundFlags) guard() (*netguard.Guard, error) {
	g, err := netguard.New(netguard.Options{Allow: netguard.ParseList(f.allow)})
	if err != nil {
		return nil, fmt.Errorf("--outbound-allow: %w", err)
	}
	return g, nil
}

// guardOperatorMail makes the operator's own SMTP server (from the
// --smtp-* flags, so chosen by the operator, not a tenant) reachable even
// when internal, and every other address pass the guard.
func guardOperatorMail(g *netguard.Guard, cfg *mail.Config) error {
	if cfg == nil {
		return nil
	}
	og, err := g.Allow(cfg.Host)
	if err != nil {
		return fmt.Errorf("--smtp-host: %w", err)
	}
	cfg.Dial = og.DialContext
	return nil
}
