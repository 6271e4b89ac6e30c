package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/custos-dev/custos/internal/certificate"
)

// runCertificate verifies an erasure certificate offline, against the
// node's public key from a file or fetched from the server.
func runCertificate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: custos certificate verify [--key PEM | --server URL] FILE")
	}
	fs := flag.NewFlagSet("custos certificate verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "the node's public key (PEM), as served at /.well-known/custos/signing-key")
	server := fs.String("server", env(getenv, "CUSTOS_SERVER", ""), "fetch the public key from this server instead (CUSTOS_SERVER)")
	file, help, err := parseWithID(fs, args[1:])
	if help || err != nil {
		return err
	}
	cert, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var pem []byte
	switch {
	case *keyFile != "":
		if pem, err = os.ReadFile(*keyFile); err != nil {
			return err
		}
	case *server != "":
		if pem, err = fetchSigningKey(ctx, *server); err != nil {
			return err
		}
	default:
		return errors.New("give the node's public key: --key FILE or --server URL")
	}
	c, err := certificate.VerifyFile(cert, pem)
	if err != nil {
		return fmt.Errorf("certificate %s does NOT verify: %w", file, err)
	}
	fmt.Fprintf(stdout, "certificate %s verifies: erasure %s of tenant %s (region %s), subject %s\n", file, c.RequestID, c.TenantID, c.Region, c.Subject)
	purged := "purged " + c.PurgedAt.Format(time.RFC3339)
	if c.PurgedAt.IsZero() && !c.PurgeDueAt.IsZero() {
		purged = "purge pass due " + c.PurgeDueAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "  shredded %s, deleted %s, %s, verified %v; records deleted %v; audit chain head %d\n",
		c.ShreddedAt.Format(time.RFC3339), c.DeletedAt.Format(time.RFC3339), purged, c.Verified, c.RecordsDeleted, c.AuditChainHead.Seq)
	return nil
}

func fetchSigningKey(ctx context.Context, server string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(server, "/")+"/.well-known/custos/signing-key", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("reach server: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch signing key: %s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<10))
}
