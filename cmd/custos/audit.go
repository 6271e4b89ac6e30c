package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"net/url"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
)

// runAudit verifies audit chains on the client side: it downloads a
// signed checkpoint, then the chain, and recomputes every link itself,
// trusting only the node's public key.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: custos audit verify [--tenant ID]")
	}
	fs := flag.NewFlagSet("custos audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := newOperatorClient(fs, getenv)
	tenant := fs.String("tenant", "", "verify this tenant's chain only (default: the operator's chain and every tenant's)")
	if help, err := parseFlags(fs, args[1:]); help || err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	pub, err := c.signingKey(ctx)
	if err != nil {
		return err
	}
	chains := []string{*tenant}
	if *tenant == "" {
		var out struct{ Tenants []tenantOut }
		if err := c.do(ctx, "GET", "/admin/v1/tenants", nil, &out); err != nil {
			return err
		}
		for _, t := range out.Tenants {
			chains = append(chains, t.ID)
		}
	}
	broken := 0
	for _, id := range chains {
		name := "operator chain"
		if id != "" {
			name = "tenant " + id
		}
		var cp audit.Checkpoint
		if err := c.do(ctx, "GET", "/admin/v1/audit/checkpoint?tenant="+url.QueryEscape(id), nil, &cp); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		checked, head, brk, err := audit.VerifyAgainst(c.entries(ctx, id), cp, pub)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if brk != nil {
			broken++
			fmt.Fprintf(stdout, "%s: BROKEN at entry %d: %s (%d entries verified before it)\n", name, brk.Seq, brk.Reason, checked)
			continue
		}
		fmt.Fprintf(stdout, "%s: %d entries verified, head %s; checkpoint of entry %d signed %s verified\n",
			name, checked, head, cp.Seq, cp.Time.Format("2006-01-02T15:04:05Z07:00"))
	}
	if broken > 0 {
		return fmt.Errorf("%d audit chain(s) broken", broken)
	}
	return nil
}

// signingKey fetches the node's public key.
func (c *operatorClient) signingKey(ctx context.Context) ([]byte, error) {
	b, err := fetchSigningKey(ctx, c.server)
	if err != nil {
		return nil, err
	}
	return audit.ParsePublicKeyPEM(b)
}

// entries pages through one chain.
func (c *operatorClient) entries(ctx context.Context, tenant string) iter.Seq2[custos.AuditEntry, error] {
	return func(yield func(custos.AuditEntry, error) bool) {
		cursor := ""
		for {
			var page struct {
				Entries    []custos.AuditEntry `json:"entries"`
				NextCursor string              `json:"next_cursor"`
			}
			path := "/admin/v1/audit?limit=1000&tenant=" + url.QueryEscape(tenant)
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			if err := c.do(ctx, "GET", path, nil, &page); err != nil {
				yield(custos.AuditEntry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if page.NextCursor == "" {
				return
			}
			cursor = page.NextCursor
		}
	}
}
