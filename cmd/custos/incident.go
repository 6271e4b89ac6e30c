package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// listFlag is a flag that may be given several times, each time with one
// value or a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// timeFlag parses an RFC 3339 time flag; "" is the zero time.
func timeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q is not an RFC 3339 time (e.g. 2026-03-01T09:00:00Z)", name, v)
	}
	return t, nil
}

type incidentOut struct {
	ID            string    `json:"id"`
	Status        string    `json:"status"`
	OpenedAt      time.Time `json:"opened_at"`
	DetectedAt    time.Time `json:"detected_at"`
	Nature        string    `json:"nature"`
	Tenants       []string  `json:"tenants"`
	Updates       []any     `json:"updates"`
	Notifications []struct {
		Tenant     string    `json:"tenant_id"`
		TenantName string    `json:"tenant_name"`
		NotifiedAt time.Time `json:"notified_at"`
		Acked      time.Time `json:"acknowledged_at"`
		Subjects   int64     `json:"approx_subjects"`
		Records    int64     `json:"approx_records"`
		Warnings   []string  `json:"warnings"`
		Messages   []struct {
			Kind     string `json:"kind"`
			Seq      int    `json:"seq"`
			Channels []struct {
				Channel  string `json:"channel"`
				Status   string `json:"status"`
				Attempts []any  `json:"attempts"`
			} `json:"channels"`
		} `json:"messages"`
	} `json:"notifications"`
}

func runIncident(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: custos incident open|update|close|list|show")
	}
	fs := flag.NewFlagSet("custos incident "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	client := newOperatorClient(fs, getenv)
	asJSON := fs.Bool("json", false, "print JSON")
	var raw json.RawMessage
	switch args[0] {
	case "open":
		detected := fs.String("detected-at", "", "when the breach became known, RFC 3339 (required)")
		nature := fs.String("nature", "", "what happened (required)")
		var categories, tenantIDs listFlag
		fs.Var(&categories, "data-categories", "categories of personal data concerned, comma-separated or repeated (required), e.g. contact.email,behaviour.events")
		encrypted := fs.Bool("encrypted", false, "the affected data was encrypted")
		keysSafe := fs.Bool("keys-safe", false, "the encryption keys were not compromised")
		consequences := fs.String("consequences", "", "likely consequences (required)")
		measures := fs.String("measures", "", "measures taken or proposed (required)")
		contact := fs.String("contact", "", "contact point for more information (required)")
		all := fs.Bool("all-tenants", false, "every tenant is affected")
		fs.Var(&tenantIDs, "tenant", "an affected tenant id, comma-separated or repeated (or --all-tenants)")
		from := fs.String("events-from", "", "only subjects with events at or after this time, RFC 3339")
		to := fs.String("events-to", "", "only subjects with events at or before this time, RFC 3339")
		if help, err := parseFlags(fs, args[1:]); help || err != nil {
			return err
		}
		var missing []string
		for _, m := range []struct{ name, v string }{{"detected-at", *detected}, {"nature", *nature}, {"consequences", *consequences}, {"measures", *measures}, {"contact", *contact}} {
			if m.v == "" {
				missing = append(missing, "--"+m.name)
			}
		}
		if len(categories) == 0 {
			missing = append(missing, "--data-categories")
		}
		if len(missing) > 0 {
			return fmt.Errorf("custos incident open: %s required", strings.Join(missing, ", "))
		}
		if *all == (len(tenantIDs) > 0) {
			return errors.New("custos incident open: give --all-tenants or --tenant ID (one or more), not both and not neither")
		}
		det, err := timeFlag("detected-at", *detected)
		if err != nil {
			return err
		}
		f, err := timeFlag("events-from", *from)
		if err != nil {
			return err
		}
		t, err := timeFlag("events-to", *to)
		if err != nil {
			return err
		}
		scope := map[string]any{"all_tenants": *all, "tenants": tenantIDs}
		if !f.IsZero() {
			scope["events_from"] = f
		}
		if !t.IsZero() {
			scope["events_to"] = t
		}
		body := map[string]any{"detected_at": det, "nature": *nature, "data_categories": categories, "encrypted": *encrypted,
			"keys_safe": *keysSafe, "likely_consequences": *consequences, "measures_taken": *measures, "contact_point": *contact, "scope": scope}
		c, err := client()
		if err != nil {
			return err
		}
		if err := c.do(ctx, "POST", "/admin/v1/incidents", body, &raw); err != nil {
			return err
		}
		return printIncident(stdout, raw, *asJSON)
	case "update":
		message := fs.String("message", "", "what is new (required)")
		nature := fs.String("nature", "", "replaces the nature")
		var categories listFlag
		fs.Var(&categories, "data-categories", "replaces the data categories")
		consequences := fs.String("consequences", "", "replaces the likely consequences")
		measures := fs.String("measures", "", "replaces the measures taken")
		id, help, err := parseWithID(fs, args[1:])
		if help || err != nil {
			return usageID(err, "custos incident update INCIDENT_ID --message TEXT")
		}
		if *message == "" {
			return errors.New("custos incident update: --message is required")
		}
		c, err := client()
		if err != nil {
			return err
		}
		body := map[string]any{"message": *message, "nature": *nature, "data_categories": categories, "likely_consequences": *consequences, "measures_taken": *measures}
		if err := c.do(ctx, "POST", "/admin/v1/incidents/"+id+"/updates", body, &raw); err != nil {
			return err
		}
		return printIncident(stdout, raw, *asJSON)
	case "close":
		note := fs.String("note", "", "the closing note (required)")
		id, help, err := parseWithID(fs, args[1:])
		if help || err != nil {
			return usageID(err, "custos incident close INCIDENT_ID --note TEXT")
		}
		if *note == "" {
			return errors.New("custos incident close: --note is required")
		}
		c, err := client()
		if err != nil {
			return err
		}
		if err := c.do(ctx, "POST", "/admin/v1/incidents/"+id+"/close", map[string]string{"note": *note}, &raw); err != nil {
			return err
		}
		return printIncident(stdout, raw, *asJSON)
	case "show":
		id, help, err := parseWithID(fs, args[1:])
		if help || err != nil {
			return usageID(err, "custos incident show INCIDENT_ID")
		}
		c, err := client()
		if err != nil {
			return err
		}
		if err := c.do(ctx, "GET", "/admin/v1/incidents/"+id, nil, &raw); err != nil {
			return err
		}
		return printIncident(stdout, raw, *asJSON)
	case "list":
		if help, err := parseFlags(fs, args[1:]); help || err != nil {
			return err
		}
		c, err := client()
		if err != nil {
			return err
		}
		var out struct {
			Incidents []struct {
				ID         string    `json:"id"`
				Status     string    `json:"status"`
				OpenedAt   time.Time `json:"opened_at"`
				DetectedAt time.Time `json:"detected_at"`
				Nature     string    `json:"nature"`
				Tenants    int       `json:"tenant_count"`
				Updates    int       `json:"update_count"`
			} `json:"incidents"`
			NextCursor string `json:"next_cursor"`
		}
		for cursor := ""; ; {
			page := out
			page.Incidents = nil
			path := "/admin/v1/incidents?limit=1000"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			if err := c.do(ctx, "GET", path, nil, &page); err != nil {
				return err
			}
			out.Incidents = append(out.Incidents, page.Incidents...)
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(out.Incidents)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tOPENED\tDETECTED\tTENANTS\tUPDATES\tNATURE")
		for _, i := range out.Incidents {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", i.ID, i.Status, i.OpenedAt.Format(time.RFC3339), i.DetectedAt.Format(time.RFC3339),
				i.Tenants, i.Updates, clipText(i.Nature, 60))
		}
		return tw.Flush()
	}
	return fmt.Errorf("unknown incident command %q (want open, update, close, list or show)", args[0])
}

func usageID(err error, usage string) error {
	if err != nil && strings.HasPrefix(err.Error(), "usage:") {
		return errors.New("usage: " + usage)
	}
	return err
}

// printIncident prints an incident with each tenant's notification status.
func printIncident(w io.Writer, raw json.RawMessage, asJSON bool) error {
	if asJSON {
		_, err := fmt.Fprintf(w, "%s\n", raw)
		return err
	}
	var in incidentOut
	if err := json.Unmarshal(raw, &in); err != nil {
		return err
	}
	fmt.Fprintf(w, "incident  %s (%s)\nopened    %s\ndetected  %s\nnature    %s\n\n", in.ID, in.Status,
		in.OpenedAt.Format(time.RFC3339), in.DetectedAt.Format(time.RFC3339), in.Nature)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tNOTIFIED\tACKNOWLEDGED\tSUBJECTS\tRECORDS\tDELIVERIES\tWARNINGS")
	for _, n := range in.Notifications {
		var ds []string
		for _, m := range n.Messages {
			for _, c := range m.Channels {
				ds = append(ds, fmt.Sprintf("%s/%s:%s(%d)", strings.TrimPrefix(m.Kind, "incident."), c.Channel, c.Status, len(c.Attempts)))
			}
		}
		acked := "-"
		if !n.Acked.IsZero() {
			acked = n.Acked.Format(time.RFC3339)
		}
		name := n.Tenant
		if n.TenantName != "" {
			name += " (" + n.TenantName + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", name, n.NotifiedAt.Format(time.RFC3339), acked, n.Subjects, n.Records,
			strings.Join(ds, " "), strings.Join(n.Warnings, "; "))
	}
	return tw.Flush()
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
