package main

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestRecipientRegionsExportsAndCertificates checks that a recipient
// outside the tenant's region is refused while transfers are forbidden,
// that one added while they were allowed is listed as blocked once they
// are forbidden again and is skipped, with an audit entry, when a notice
// is due; and that the tenant's region (and retention) appear in exports
// and in signed certificates that still verify.
func TestRecipientRegionsExportsAndCertificates(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "residency")
	bearer := "Bearer " + tn.SecretKey
	crm := newReceiver(t, "crm-signing-secret-0123")
	create := func(name, region string) response {
		return srv.do(t, "POST", "/api/v1/recipients", []byte(`{"name":"`+name+`","url":"`+crm.srv.URL+`","secret":"crm-signing-secret-0123","region":"`+region+`"}`), "Authorization", bearer)
	}
	if r := create("crm-us", "us"); r.status != http.StatusForbidden || !strings.Contains(r.errorMessage(), `"us"`) || !strings.Contains(r.errorMessage(), "allow_transfers_outside_region") {
		t.Errorf("recipient in us for an eu tenant: status %d %s; want 403 naming the region and the setting", r.status, r.body)
	}
	if r := create("crm-eu", "eu"); r.status != http.StatusCreated {
		t.Fatalf("recipient in eu: %d %s", r.status, r.body)
	}
	srv.patchSettings(t, tn.SecretKey, map[string]any{"allow_transfers_outside_region": true, "event_retention_days": 30})
	if r := create("crm-us", "us"); r.status != http.StatusCreated {
		t.Fatalf("recipient in us with transfers allowed: %d %s", r.status, r.body)
	}
	srv.patchSettings(t, tn.SecretKey, map[string]any{"allow_transfers_outside_region": false})
	var list struct {
		Recipients []struct {
			Name, Region string
			Blocked      bool   `json:"blocked"`
			Reason       string `json:"blocked_reason"`
		} `json:"recipients"`
	}
	mustDecode(t, srv.do(t, "GET", "/api/v1/recipients", nil, "Authorization", bearer).body, &list)
	if len(list.Recipients) != 2 {
		t.Fatalf("recipients = %+v, want two", list.Recipients)
	}
	for _, rc := range list.Recipients {
		if rc.Blocked != (rc.Region == "us") || rc.Blocked && !strings.Contains(rc.Reason, "forbidden") {
			t.Errorf("recipient %+v: want only the us one blocked, with the reason", rc)
		}
	}
	if rec, _ := srv.processingRecord(t, tn.SecretKey); len(rec.Transfers.Destinations) != 1 || rec.Transfers.Destinations[0].Name != "crm-us" || rec.Transfers.Allowed {
		t.Errorf("record of processing transfers = %+v; want crm-us listed outside the region, transfers forbidden", rec.Transfers)
	}

	user := "res-" + randomHex(6)
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "res-a-"+randomHex(4), 2)))
	acc := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"access","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", bearer)
	var req struct{ ID, Status string }
	mustDecode(t, acc.body, &req)
	res := srv.do(t, "GET", "/api/v1/requests/"+req.ID+"/result", nil, "Authorization", bearer)
	var export struct {
		Region        string `json:"region"`
		Retention     string `json:"retention"`
		RetentionDays int    `json:"retention_days"`
		Purposes      []struct {
			Name       string `json:"name"`
			LegalBasis string `json:"legal_basis"`
		} `json:"purposes"`
	}
	mustDecode(t, res.body, &export)
	if res.status != 200 || export.Region != "eu" || export.RetentionDays != 30 || !strings.Contains(export.Retention, "30 days") {
		t.Errorf("access export: status %d, region %q, retention %q (%d days); want eu and 30 days", res.status, export.Region, export.Retention, export.RetentionDays)
	}
	if len(export.Purposes) != 3 || export.Purposes[1].Name != "marketing" || export.Purposes[1].LegalBasis != "consent" {
		t.Errorf("access export purposes = %+v, want the three default purposes with their legal basis", export.Purposes)
	}

	er := srv.do(t, "POST", "/api/v1/requests", []byte(`{"type":"erasure","identity":{"type":"user_id","value":"`+user+`"}}`), "Authorization", bearer)
	mustDecode(t, er.body, &req)
	if er.status != 201 || req.Status != "completed" {
		t.Fatalf("erasure: %d %s", er.status, er.body)
	}
	cert := srv.do(t, "GET", "/api/v1/requests/"+req.ID+"/certificate", nil, "Authorization", bearer)
	var c struct {
		Region     string `json:"region"`
		Recipients []struct {
			Recipient string `json:"recipient"`
		} `json:"recipients"`
	}
	mustDecode(t, cert.body, &c)
	if cert.status != 200 || c.Region != "eu" {
		t.Errorf("certificate: status %d, region %q; want eu", cert.status, c.Region)
	}
	for _, o := range c.Recipients {
		if o.Recipient == "crm-us" {
			t.Errorf("the certificate lists a notice to the blocked recipient: %s", cert.body)
		}
	}
	file := t.TempDir() + "/cert.json"
	os.WriteFile(file, cert.body, 0o600)
	if out, err := cli(t, "", "certificate", "verify", "--server", srv.URL, file); err != nil || !strings.Contains(out, "verifies") {
		t.Errorf("certificate verify: %v\n%s", err, out)
	}
	edited := strings.Replace(string(cert.body), `"region": "eu"`, `"region": "us"`, 1)
	if edited == string(cert.body) {
		t.Fatalf("could not edit the region in %s", cert.body)
	}
	os.WriteFile(file, []byte(edited), 0o600)
	if _, err := cli(t, "", "certificate", "verify", "--server", srv.URL, file); err == nil {
		t.Errorf("a certificate with its region changed still verifies")
	}
	audit := string(srv.do(t, "GET", "/api/v1/audit?limit=1000", nil, "Authorization", bearer).body)
	if !strings.Contains(audit, `"recipient.skipped"`) || !strings.Contains(audit, "crm-us") {
		t.Errorf("audit log has no recipient.skipped entry for crm-us: %s", audit)
	}
}
