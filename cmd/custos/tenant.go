package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// operatorClient talks to a running server's operator API.
type operatorClient struct {
	server, token string
	http          *http.Client
}

func newOperatorClient(fs *flag.FlagSet, getenv func(string) string) func() (*operatorClient, error) {
	server := fs.String("server", env(getenv, "CUSTOS_SERVER", "http://127.0.0.1:8080"), "server URL (CUSTOS_SERVER)")
	data := fs.String("data", env(getenv, "CUSTOS_DATA", "./custos-data"), "data directory holding operator.token (CUSTOS_DATA)")
	return func() (*operatorClient, error) {
		token := getenv("CUSTOS_OPERATOR_TOKEN")
		if token == "" {
			b, err := os.ReadFile(filepath.Join(*data, "operator.token"))
			if err != nil {
				return nil, fmt.Errorf("no operator token: set CUSTOS_OPERATOR_TOKEN or point --data at the server's data directory (%w)", err)
			}
			token = strings.TrimSpace(string(b))
		}
		return &operatorClient{server: strings.TrimRight(*server, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
	}
}

// do sends a request and decodes a 2xx JSON answer into out; other
// answers become errors carrying the server's message.
func (c *operatorClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reach server: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("server answered %s: %s", resp.Status, e.Error.Message)
		}
		return fmt.Errorf("server answered %s", resp.Status)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

type tenantOut struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Region    string    `json:"region"`
	CreatedAt time.Time `json:"created_at"`
	WriteKey  string    `json:"write_key,omitempty"`
	SecretKey string    `json:"secret_key,omitempty"`
	Identity  string    `json:"identity_verification_secret,omitempty"`
	Callback  string    `json:"callback_signing_secret,omitempty"`
	Delivery  string    `json:"delivery_signing_secret,omitempty"`
}

func runTenant(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: custos tenant create|list|rotate-keys|delete")
	}
	fs := flag.NewFlagSet("custos tenant "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := newOperatorClient(fs, getenv)
	asJSON := fs.Bool("json", false, "print JSON")
	switch args[0] {
	case "create":
		name := fs.String("name", "", "tenant name (required)")
		region := fs.String("region", "", "region (default: the server's)")
		if help, err := parseFlags(fs, args[1:]); help || err != nil {
			return err
		}
		if *name == "" {
			return errors.New("--name is required")
		}
		c, err := client()
		if err != nil {
			return err
		}
		var t tenantOut
		if err := c.do(ctx, "POST", "/admin/v1/tenants", map[string]string{"name": *name, "region": *region}, &t); err != nil {
			return err
		}
		return printTenantKeys(stdout, t, *asJSON)
	case "list":
		if help, err := parseFlags(fs, args[1:]); help || err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		var out struct{ Tenants []tenantOut }
		if err := c.do(ctx, "GET", "/admin/v1/tenants", nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(out.Tenants)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tREGION\tCREATED")
		for _, t := range out.Tenants {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Region, t.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "rotate-keys":
		id, help, err := parseWithID(fs, args[1:])
		if help || err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		var t tenantOut
		if err := c.do(ctx, "POST", "/admin/v1/tenants/"+id+"/keys/rotate", nil, &t); err != nil {
			return err
		}
		return printTenantKeys(stdout, t, *asJSON)
	case "delete":
		yes := fs.Bool("yes", false, "confirm: the tenant's data becomes unreadable at once and is deleted")
		id, help, err := parseWithID(fs, args[1:])
		if help || err != nil {
			return err
		}
		if !*yes {
			return errors.New("deleting a tenant destroys its encryption key: all its data becomes unreadable at once, backups included; add --yes to confirm")
		}
		c, err := client()
		if err != nil {
			return err
		}
		if err := c.do(ctx, "DELETE", "/admin/v1/tenants/"+id, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s deleted: its key is destroyed and its data purged\n", id)
		return nil
	}
	return fmt.Errorf("unknown tenant command %q (want create, list, rotate-keys or delete)", args[0])
}

func printTenantKeys(w io.Writer, t tenantOut, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(t)
	}
	fmt.Fprintf(w, "tenant      %s (%s, region %s)\nwrite key   %s\nsecret key  %s\nidentity verification secret  %s\ncallback signing secret       %s\ndelivery signing secret       %s\n",
		t.ID, t.Name, t.Region, t.WriteKey, t.SecretKey, t.Identity, t.Callback, t.Delivery)
	fmt.Fprintln(w, "The keys are shown once. The write key ships in apps and can only send events; keep the secret key and the identity verification secret on your servers.")
	return nil
}

// parseWithID parses flags and one tenant id, given before or after them.
func parseWithID(fs *flag.FlagSet, args []string) (id string, help bool, err error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", errors.Is(err, flag.ErrHelp), ignoreHelp(err)
	}
	rest := fs.Args()
	if id == "" && len(rest) > 0 {
		id, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", false, fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))
	}
	if id == "" {
		return "", false, fmt.Errorf("usage: %s [flags] TENANT_ID", fs.Name())
	}
	return id, false, nil
}

func ignoreHelp(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
