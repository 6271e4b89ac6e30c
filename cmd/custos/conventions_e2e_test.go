package main

// The conventions every route shares (docs/api.md, "Conventions"): one
// body decoder, one paging scheme, JSON 404 and 405, the write key
// checked before the body, DELETE answered 204.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/custos-dev/custos/internal/opendsr"
)

func TestRequestBodies(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "bodies")
	op := []string{"Authorization", "Bearer " + srv.cfg.token, "Content-Type", "application/json"}
	sec := []string{"Authorization", "Bearer " + tn.SecretKey, "Content-Type", "application/json"}
	big := `{"name":"` + strings.Repeat("x", 1<<20) + `"}`
	for _, c := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code, message            string
	}{
		{"over the limit", "POST", "/admin/v1/tenants", big, op, 413, "too_large", "larger than 1048576 bytes"},
		{"settings over the limit", "PATCH", "/api/v1/settings", `{"controller_name":"` + strings.Repeat("x", 1<<20) + `"}`, sec, 413, "too_large", "larger than"},
		{"trailing data", "POST", "/admin/v1/tenants", `{"name":"a"} {"name":"b"}`, op, 400, "invalid", "unexpected data after the JSON value"},
		{"trailing garbage", "POST", "/api/v1/requests", `{"type":"access","identity":{"type":"user_id","value":"u"}}xyz`, sec, 400, "invalid", "after the JSON value"},
		{"unknown field", "POST", "/api/v1/recipients", `{"name":"a","colour":"red"}`, sec, 400, "invalid", `unknown field "colour"`},
		{"wrong type", "POST", "/api/v1/requests/req_x/extend", `{"months":"two"}`, sec, 400, "invalid", "months must be a number"},
		{"empty", "POST", "/admin/v1/tenants", ``, op, 400, "invalid", "body is empty"},
		{"invalid JSON", "POST", "/api/v1/consents", `{"purpose":`, sec, 400, "invalid", "cut short"},
		{"privacy unknown field", "POST", "/v1/privacy", `{"type":"suppress","anonymousId":"a","extra":1}`, []string{"Authorization", basicAuth(tn.WriteKey)}, 400, "invalid", `unknown field "extra"`},
	} {
		r := srv.do(t, c.method, c.path, []byte(c.body), c.headers...)
		if r.status != c.status || r.errorCode() != c.code || !strings.Contains(r.errorMessage(), c.message) {
			t.Errorf("%s: %s %s: %d %s; want %d %s naming %q", c.name, c.method, c.path, r.status, r.body, c.status, c.code, c.message)
		}
	}
	// A settings patch just under the limit is applied whole.
	name := strings.Repeat("n", 200)
	if r := srv.do(t, "PATCH", "/api/v1/settings", []byte(`{"controller_name":"`+name+`"}`), sec...); r.status != 200 || !strings.Contains(string(r.body), name) {
		t.Errorf("PATCH settings: %d %s", r.status, r.body)
	}
}

func TestUnmatchedRoutesAnswerJSON(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	for _, c := range []struct {
		method, path string
		status       int
		shape, allow string
	}{
		{"GET", "/no/such/path", 404, "custos", ""},
		{"GET", "/api/v1/nothing", 404, "custos", ""},
		{"PUT", "/api/v1/settings", 405, "custos", "GET"},
		{"GET", "/v1/batch", 405, "custos", "POST"},
		{"GET", "/opendsr/v2/nothing", 404, "opendsr", ""},
		{"PUT", "/opendsr/v2/requests", 405, "opendsr", "POST"},
		{"POST", "/opendsr/v2/callbacks/not-a-token", 404, "opendsr", ""},
	} {
		r := srv.do(t, c.method, c.path, nil)
		what := c.method + " " + c.path
		if r.status != c.status || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %q %s; want %d JSON", what, r.status, r.header.Get("Content-Type"), r.body, c.status)
		}
		if s := errorShape(r.body); s != c.shape {
			t.Errorf("%s: error shape %s, want %s: %s", what, s, c.shape, r.body)
		}
		// The answers of Custos as processor are signed; those to a
		// recipient's callbacks are not.
		if c.shape == "opendsr" && !strings.Contains(c.path, "/callbacks/") && r.header.Get(opendsr.HeaderSignature) == "" {
			t.Errorf("%s: OpenDSR answer without %s", what, opendsr.HeaderSignature)
		}
		if c.allow != "" && !strings.Contains(r.header.Get("Allow"), c.allow) {
			t.Errorf("%s: Allow %q, want it to name %s", what, r.header.Get("Allow"), c.allow)
		}
	}
	if r := srv.do(t, "GET", "/healthz", nil); r.status != 200 {
		t.Errorf("GET /healthz: %d", r.status)
	}
}

// TestWriteKeyBeforeBody: a wrong write key in the header is refused
// before the body is decompressed or decoded.
func TestWriteKeyBeforeBody(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "keyfirst")
	notGzip := []byte("this is not gzip at all")
	for _, path := range []string{"/v1/batch", "/v1/privacy"} {
		r := srv.do(t, "POST", path, notGzip, "Authorization", basicAuth("wk_wrong"), "Content-Encoding", "gzip")
		if r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("POST %s with a wrong key and a broken gzip body: %d %s; want 401 with a challenge", path, r.status, r.body)
		}
	}
	// With the right key the body is read and its fault named.
	if r := srv.do(t, "POST", "/v1/batch", notGzip, "Authorization", basicAuth(tn.WriteKey), "Content-Encoding", "gzip"); r.status != 400 {
		t.Errorf("POST /v1/batch with the right key and a broken gzip body: %d %s; want 400", r.status, r.body)
	}
	// A key in the body (beacons) still works.
	body := `{"writeKey":"` + tn.WriteKey + `","batch":[{"type":"track","event":"E","userId":"u","messageId":"m1"}]}`
	if r := srv.do(t, "POST", "/beacon/v1/batch", []byte(body), "Content-Type", "text/plain"); r.status != 200 {
		t.Errorf("beacon with the key in the body: %d %s", r.status, r.body)
	}
}

// page follows next_cursor through a list, limit items at a time, and
// returns the ids of every item (field idField of each element of name).
func (s *testServer) page(t *testing.T, path, name, idField string, limit int, headers ...string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for range 1000 {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		r := s.do(t, "GET", path+sep+q.Encode(), nil, headers...)
		if r.status != 200 {
			t.Fatalf("GET %s (cursor %q): %d %s", path, cursor, r.status, r.body)
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatalf("GET %s: decode %s: %v", path, r.body, err)
		}
		var items []map[string]any
		if err := json.Unmarshal(out[name], &items); err != nil {
			t.Fatalf("GET %s: %q is not a list in %s: %v", path, name, r.body, err)
		}
		if len(items) > limit {
			t.Fatalf("GET %s: %d items, limit %d", path, len(items), limit)
		}
		for _, it := range items {
			ids = append(ids, fmt.Sprint(it[idField]))
		}
		var next string
		if err := json.Unmarshal(out["next_cursor"], &next); err != nil {
			t.Fatalf("GET %s: next_cursor missing or not a string in %s", path, r.body)
		}
		if next == "" {
			return ids
		}
		cursor = next
	}
	t.Fatalf("GET %s: more than 1000 pages", path)
	return nil
}

func TestEveryListPagesOneWay(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	op := []string{"Authorization", "Bearer " + srv.cfg.token}
	tn := srv.createTenant(t, "pages")
	sec := []string{"Authorization", "Bearer " + tn.SecretKey, "Content-Type", "application/json"}
	for i := range 3 {
		srv.createTenant(t, fmt.Sprintf("pages-%d", i))
		srv.do(t, "POST", "/api/v1/requests", []byte(fmt.Sprintf(`{"type":"suppress","identity":{"type":"user_id","value":"u%d"}}`, i)), sec...)
		srv.do(t, "POST", "/api/v1/recipients", []byte(fmt.Sprintf(`{"name":"r%d","url":"https://r.example/%d","secret":"0123456789abcdef"}`, i, i)), sec...)
		srv.do(t, "POST", "/api/v1/campaigns", []byte(campaignBody), sec...)
		srv.do(t, "POST", "/admin/v1/incidents", []byte(`{"detected_at":"2026-01-20T08:00:00Z","nature":"n","data_categories":["x"],"likely_consequences":"l","measures_taken":"m","contact_point":"c","scope":{"tenants":["`+tn.ID+`"]}}`), op...)
	}
	var buf bytes.Buffer
	buf.WriteString(`{"batch":[`)
	for i := range 5 {
		if i > 0 {
			buf.WriteString(",")
		}
		fmt.Fprintf(&buf, `{"type":"track","event":"E%d","userId":"pager","messageId":"pg-%d"}`, i, i)
	}
	buf.WriteString(`]}`)
	srv.ingest(t, tn.WriteKey, "/v1/batch", buf.Bytes())
	subject := srv.findProfile(t, tn.SecretKey, "user_id", "pager").SubjectID

	for _, c := range []struct {
		path, name, id string
		headers        []string
		atLeast        int
	}{
		{"/api/v1/requests", "requests", "id", sec, 3},
		{"/api/v1/recipients", "recipients", "id", sec, 3},
		{"/api/v1/campaigns", "campaigns", "id", sec, 3},
		{"/api/v1/incidents", "incidents", "id", sec, 3},
		{"/api/v1/audit", "entries", "seq", sec, 6},
		{"/api/v1/profiles/" + subject + "/events", "events", "message_id", sec, 5},
		{"/admin/v1/tenants", "tenants", "id", op, 4},
		{"/admin/v1/incidents", "incidents", "id", op, 3},
		{"/admin/v1/audit", "entries", "seq", op, 4},
		{"/admin/v1/audit?tenant=" + tn.ID, "entries", "seq", op, 6},
	} {
		whole := srv.page(t, c.path, c.name, c.id, 1000, c.headers...)
		paged := srv.page(t, c.path, c.name, c.id, 2, c.headers...)
		if len(whole) < c.atLeast || strings.Join(whole, ",") != strings.Join(paged, ",") {
			t.Errorf("%s: in one page %v, two at a time %v; want the same, at least %d", c.path, whole, paged, c.atLeast)
		}
	}

	// A cursor belongs to its list.
	r := srv.do(t, "GET", "/api/v1/requests?limit=1", nil, sec...)
	var first struct {
		Next string `json:"next_cursor"`
	}
	if err := json.Unmarshal(r.body, &first); err != nil || first.Next == "" {
		t.Fatalf("GET /api/v1/requests?limit=1: %s (%v); want a next_cursor", r.body, err)
	}
	for _, path := range []string{"/api/v1/recipients?cursor=" + url.QueryEscape(first.Next), "/api/v1/requests?cursor=made-up", "/api/v1/requests?limit=0", "/api/v1/requests?limit=1001"} {
		if r := srv.do(t, "GET", path, nil, sec...); r.status != 400 || r.errorCode() != "invalid" {
			t.Errorf("GET %s: %d %s; want 400 invalid", path, r.status, r.body)
		}
	}
}

func TestDeletesAnswer204(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "deletes")
	gone := srv.createTenant(t, "deleted")
	sec := []string{"Authorization", "Bearer " + tn.SecretKey, "Content-Type", "application/json"}
	r := srv.do(t, "POST", "/api/v1/recipients", []byte(`{"name":"r","url":"https://r.example/","secret":"0123456789abcdef"}`), sec...)
	id := jsonField(t, "recipient", r.body, "id")
	for _, c := range []struct{ path, auth string }{
		{"/api/v1/recipients/" + id, "Bearer " + tn.SecretKey},
		{"/admin/v1/tenants/" + gone.ID, "Bearer " + srv.cfg.token},
	} {
		r := srv.do(t, "DELETE", c.path, nil, "Authorization", c.auth)
		if r.status != http.StatusNoContent || len(r.body) != 0 {
			t.Errorf("DELETE %s: %d %q; want 204 with no body", c.path, r.status, r.body)
		}
	}
}
