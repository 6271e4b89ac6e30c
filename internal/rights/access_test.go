package rights_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/rights"
)

func (e *env) result(t *testing.T, id, format string) ([]byte, string, error) {
	t.Helper()
	var buf bytes.Buffer
	var ct string
	err := e.eng.Result(context.Background(), e.tenant, id, format, &buf, func(c, _ string) { ct = c })
	return buf.Bytes(), ct, err
}

func identify(user, anon, email string) custos.Message {
	m := track(user, anon)
	m.Type, m.Event = custos.Identify, ""
	m.Traits = []byte(`{"email":"` + email + `","plan":"pro"}`)
	m.Email = email
	return m
}

func TestAccessExportHoldsEverything(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, identify("u-acc", "a-acc", "acc@example.com"), track("u-acc", ""), track("", "a-acc"), track("u-acc", ""))
	e.request(t, custos.Restrict, custos.UserID, "u-acc")
	r := e.request(t, custos.Access, custos.Email, "ACC@example.com")
	body, ct, err := e.result(t, r.ID, "")
	if err != nil || ct != "application/json" {
		t.Fatalf("result: %v (%s)", err, ct)
	}
	var got struct {
		DataHeld     bool                       `json:"data_held"`
		Identifiers  map[string][]string        `json:"identifiers"`
		Traits       map[string]json.RawMessage `json:"traits"`
		Events       []custos.Event             `json:"events"`
		Restrictions struct{ Restricted bool }  `json:"restrictions"`
		Retention    string                     `json:"retention"`
		Region       string                     `json:"region"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("result is not JSON: %v\n%s", err, body)
	}
	if !got.DataHeld || len(got.Events) != 4 || string(got.Traits["plan"]) != `"pro"` || !got.Restrictions.Restricted ||
		got.Identifiers["email"][0] != "acc@example.com" || got.Identifiers["anonymous_id"][0] != "a-acc" || got.Retention == "" || got.Region != "eu" {
		t.Errorf("access result = %s; want identifiers, traits, 4 events, the restriction, retention and region", body)
	}
	if _, _, err := e.result(t, r.ID, "zip"); custos.ErrorCode(err) != custos.Invalid {
		t.Errorf("zip of an access request: err = %v, want Invalid", err)
	}
	// Downloads are audited; after 7 days the result is gone.
	entries, _ := e.store.AuditEntries(context.Background(), e.tenant, 0, 1000)
	downloads := 0
	for _, en := range entries {
		if en.Action == "request.result.download" && en.RequestID == r.ID {
			downloads++
		}
	}
	if downloads != 1 {
		t.Errorf("audited downloads = %d, want 1", downloads)
	}
	e.clock.set(e.clock.now().Add(rights.ResultTTL + time.Minute))
	if _, _, err := e.result(t, r.ID, ""); custos.ErrorCode(err) != custos.Gone {
		t.Errorf("result after 7 days: err = %v, want Gone", err)
	}
}

func TestPortabilityFormats(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, identify("u-port", "", "port@example.com"), track("u-port", ""), track("u-port", ""))
	r := e.request(t, custos.Portability, custos.UserID, "u-port")

	nd, ct, err := e.result(t, r.ID, "ndjson")
	if err != nil || ct != "application/x-ndjson" {
		t.Fatalf("ndjson: %v (%s)", err, ct)
	}
	lines := strings.Split(strings.TrimSpace(string(nd)), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], `"kind":"profile"`) || !strings.Contains(lines[3], `"kind":"event"`) {
		t.Errorf("ndjson = %d lines (%q…), want a profile line and 3 event lines", len(lines), lines[0])
	}

	zb, ct, err := e.result(t, r.ID, "zip")
	if err != nil || ct != "application/zip" {
		t.Fatalf("zip: %v (%s)", err, ct)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	var profile map[string]any
	if err := json.Unmarshal(files["profile.json"], &profile); err != nil || profile["data_held"] != true {
		t.Errorf("profile.json = %s (%v)", files["profile.json"], err)
	}
	sc := bufio.NewScanner(bytes.NewReader(files["events.ndjson"]))
	n := 0
	for sc.Scan() {
		n++
	}
	if n != 3 || len(files["README.txt"]) == 0 {
		t.Errorf("zip holds %d event lines and README %d bytes; want 3 and a README", n, len(files["README.txt"]))
	}
}

func TestAccessForSomeoneUnknownSaysNothingIsHeld(t *testing.T) {
	e := newEnv(t)
	r := e.request(t, custos.Access, custos.UserID, "stranger")
	body, _, err := e.result(t, r.ID, "json")
	if err != nil || !strings.Contains(string(body), `"data_held":false`) || !strings.Contains(string(body), `"events":[]`) {
		t.Errorf("result for an unknown person = %s (%v), want no data held and no events", body, err)
	}
}

func TestRectifySetsAndRemovesTraitsAndAuditsNamesOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ingest(t, identify("u-rect", "", "old@example.com"))
	r, err := e.eng.Create(ctx, e.tenant, rights.Input{Type: custos.Rectify, Identity: custos.Identifier{Type: custos.UserID, Value: "u-rect"},
		Traits: map[string]json.RawMessage{"plan": []byte(`"enterprise-secret-value"`), "email": []byte(`null`)}})
	if err != nil || r.Status != custos.Completed {
		t.Fatalf("rectify: %+v, %v", r, err)
	}
	p, err := e.rd.Profile(ctx, e.tenant, r.Subject)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Traits["plan"]) != `"enterprise-secret-value"` {
		t.Errorf("plan = %s, want the rectified value", p.Traits["plan"])
	}
	if _, ok := p.Traits["email"]; ok {
		t.Errorf("email trait still there after removal: %s", p.Traits["email"])
	}
	entries, _ := e.store.AuditEntries(ctx, e.tenant, 0, 1000)
	chain, _ := json.Marshal(entries)
	if bytes.Contains(chain, []byte("enterprise-secret-value")) || bytes.Contains(chain, []byte("old@example.com")) {
		t.Errorf("the audit chain holds a trait value: %s", chain)
	}
	if !bytes.Contains(chain, []byte("email,plan")) {
		t.Errorf("the audit chain does not name the rectified traits: %s", chain)
	}
	bad, err := e.eng.Create(ctx, e.tenant, rights.Input{Type: custos.Rectify, Identity: custos.Identifier{Type: custos.UserID, Value: "nobody"},
		Traits: map[string]json.RawMessage{"x": []byte(`1`)}})
	if err != nil || bad.Status != custos.Rejected {
		t.Errorf("rectify of an unknown person: %+v, %v; want rejected", bad, err)
	}
}
