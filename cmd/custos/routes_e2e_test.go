package main

// This file walks server.Routes(), the table every route is registered
// from, so a new route is covered without anyone adding it here: each
// route must have an authentication class and a row in docs/api.md; every
// class is tried with no credential, a wrong one and the other classes'
// ones; every tenant route is tried with tenant A's key on tenant B's
// objects; and every route's successful answer may hold only the fields
// docs/api.md documents for it.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/server"
)

// apiDoc is what the test reads from docs/api.md: the route table and
// the documented resources.
type apiDoc struct {
	// routes maps "METHOD path" to the row's auth class and the anchor of
	// its answer's resource ("" when the answer is not a JSON resource).
	routes map[string]docRoute
	// resources maps an anchor to its field rows.
	resources map[string][]docField
}

type docRoute struct {
	auth     string
	resource string
}

type docField struct {
	path     string // e.g. requests[].erasure.records_deleted.*
	include  string // anchor of a resource nested at path
	array    bool   // an array (of include's resource)
	freeForm bool   // anything below path is allowed
}

var (
	docCode   = regexp.MustCompile("`([^`]+)`")
	docAnchor = regexp.MustCompile(`\]\(#([a-z0-9-]+)\)`)
)

// anchorOf is the anchor GitHub gives a heading.
func anchorOf(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// readAPIDoc parses docs/api.md: the rows of the "Routes" table
// (| method | `path` ... | auth | answer |) and, under each "### " heading
// of the "Resources" section, the rows | `field` | type | meaning |.
func readAPIDoc(t *testing.T) apiDoc {
	t.Helper()
	f, err := os.Open("../../docs/api.md")
	if err != nil {
		t.Fatalf("open docs/api.md: %v", err)
	}
	defer f.Close()
	doc := apiDoc{routes: map[string]docRoute{}, resources: map[string][]docField{}}
	section, resource := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			section, resource = strings.TrimSpace(line[3:]), ""
			continue
		case strings.HasPrefix(line, "### ") && section == "Resources":
			resource = anchorOf(line[4:])
			doc.resources[resource] = nil
			continue
		case !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|--") || strings.HasPrefix(line, "| --"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case section == "Routes" && len(cells) == 4:
			method := strings.Trim(cells[0], "`")
			answer := ""
			if m := docAnchor.FindStringSubmatch(cells[3]); m != nil {
				answer = m[1]
			}
			for _, p := range docCode.FindAllStringSubmatch(cells[1], -1) {
				doc.routes[method+" "+p[1]] = docRoute{auth: cells[2], resource: answer}
			}
		case section == "Resources" && resource != "" && len(cells) >= 2:
			m := docCode.FindStringSubmatch(cells[0])
			if m == nil {
				continue // the header row
			}
			fd := docField{path: m[1], freeForm: strings.Contains(cells[1], "free-form"), array: strings.HasPrefix(cells[1], "[]")}
			if a := docAnchor.FindStringSubmatch(cells[1]); a != nil {
				fd.include = a[1]
			}
			doc.resources[resource] = append(doc.resources[resource], fd)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read docs/api.md: %v", err)
	}
	if len(doc.routes) == 0 || len(doc.resources) == 0 {
		t.Fatalf("docs/api.md: found %d routes and %d resources; want its Routes table and Resources section", len(doc.routes), len(doc.resources))
	}
	return doc
}

// fields returns the allowed field paths of a resource, nested resources
// expanded, and the paths below which anything goes.
func (d apiDoc) fields(t *testing.T, anchor string) (allowed map[string]bool, free []string) {
	t.Helper()
	allowed = map[string]bool{}
	var expand func(anchor, prefix string, depth int)
	expand = func(anchor, prefix string, depth int) {
		rows, ok := d.resources[anchor]
		if !ok || depth > 8 {
			t.Errorf("docs/api.md: no resource #%s (or it nests itself)", anchor)
			return
		}
		for _, f := range rows {
			if f.path == "*" && f.include != "" {
				// The fields of another resource, at the same level.
				expand(f.include, prefix, depth+1)
				continue
			}
			p := f.path
			if prefix != "" {
				p = prefix + "." + f.path
			}
			allowed[p] = true
			if f.freeForm {
				free = append(free, p)
			}
			if f.include != "" && f.array {
				expand(f.include, p+"[]", depth+1)
			} else if f.include != "" {
				expand(f.include, p, depth+1)
			}
		}
	}
	expand(anchor, "", 0)
	return allowed, free
}

// undocumented walks a JSON value and returns each field path that is not
// documented. Arrays add "[]" to the path; an object whose path + ".*" is
// documented is a map, its keys "*".
func undocumented(v any, path string, allowed map[string]bool, free []string) []string {
	for _, f := range free {
		if path == f || strings.HasPrefix(path, f+".") || strings.HasPrefix(path, f+"[]") {
			return nil
		}
	}
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			key := k
			if allowed[join(path, "*")] {
				key = "*"
			}
			p := join(path, key)
			if !allowed[p] {
				out = append(out, p)
				continue
			}
			out = append(out, undocumented(child, p, allowed, free)...)
		}
	case []any:
		for _, child := range x {
			out = append(out, undocumented(child, path+"[]", allowed, free)...)
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// routeFixture is what the test made of tenant B, for the routes to act on.
type routeFixture struct {
	a, b, c, d tenantInfo // A reads B's objects; C and D are rotated and deleted
	subject    string     // B's subject of user u-b
	user       string
	done       string // a completed access request
	erased     string // a completed erasure request
	pending    []string
	recipient  string
	dropRcp    string // the recipient the DELETE removes
	campaign   string
	incident   string // notifies B only
	updInc     string
	closeInc   string
	dsr        map[string][2]string // OpenDSR version -> request ids (status, cancel)
}

// ids is every id of tenant B's objects: none may appear in an answer to A.
func (f routeFixture) ids() []string {
	out := []string{f.b.ID, f.subject, f.done, f.erased, f.recipient, f.dropRcp, f.campaign, f.incident, f.updInc, f.closeInc}
	out = append(out, f.pending...)
	for _, v := range f.dsr {
		out = append(out, v[0], v[1])
	}
	return out
}

func jsonField(t *testing.T, what string, body []byte, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: decode %s: %v", what, body, err)
	}
	s, _ := m[field].(string)
	if s == "" {
		t.Fatalf("%s: no %q in %s", what, field, body)
	}
	return s
}

func newRouteFixture(t *testing.T, srv *testServer) routeFixture {
	t.Helper()
	op := []string{"Authorization", "Bearer " + srv.cfg.token}
	f := routeFixture{a: srv.createTenant(t, "routes-a"), b: srv.createTenant(t, "routes-b"),
		c: srv.createTenant(t, "routes-c"), d: srv.createTenant(t, "routes-d"), user: "u-b-" + randomHex(4),
		dsr: map[string][2]string{}}
	sec := []string{"Authorization", "Bearer " + f.b.SecretKey, "Content-Type", "application/json"}
	srv.patchSettings(t, f.b.SecretKey, map[string]any{"opendsr_review": true,
		"smtp": map[string]any{"host": "127.0.0.1", "port": 9, "from": "news@b.example", "tls": "none", "region": "eu"}})
	gone := f.user + "-gone"
	srv.ingest(t, f.b.WriteKey, "/v1/batch", []byte(`{"batch":[
		{"type":"identify","userId":"`+f.user+`","traits":{"plan":"pro","email":"`+f.user+`@b.example"},"messageId":"`+randomHex(8)+`"},
		{"type":"track","userId":"`+f.user+`","event":"Order Completed","messageId":"`+randomHex(8)+`"},
		{"type":"identify","userId":"`+gone+`","traits":{"plan":"free"},"messageId":"`+randomHex(8)+`"}]}`))
	f.subject = srv.findProfile(t, f.b.SecretKey, "user_id", f.user).SubjectID

	create := func(what, method, path, body string, headers []string, want int, field string) string {
		t.Helper()
		r := srv.do(t, method, path, []byte(body), headers...)
		if r.status != want {
			t.Fatalf("fixture %s: %s %s: %d %s; want %d", what, method, path, r.status, r.body, want)
		}
		return jsonField(t, "fixture "+what, r.body, field)
	}
	f.done = create("access", "POST", "/api/v1/requests", `{"type":"access","identity":{"type":"user_id","value":"`+f.user+`"}}`, sec, 201, "id")
	f.erased = create("erasure", "POST", "/api/v1/requests", `{"type":"erasure","identity":{"type":"user_id","value":"`+gone+`"}}`, sec, 201, "id")
	for _, id := range []string{f.done, f.erased} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			r := srv.do(t, "GET", "/api/v1/requests/"+id, nil, sec...)
			if jsonField(t, "request "+id, r.body, "status") == "completed" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %s did not complete within 20s: %s", id, r.body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := range 4 {
		body := fmt.Sprintf(`{"type":"erasure","userId":"%s-p%d"}`, f.user, i)
		f.pending = append(f.pending, create("pending request", "POST", "/v1/privacy", body,
			[]string{"Authorization", basicAuth(f.b.WriteKey)}, 202, "request_id"))
	}
	rcp := `{"name":"CRM %s","url":"https://crm.example/hook","secret":"0123456789abcdef0123"}`
	f.recipient = create("recipient", "POST", "/api/v1/recipients", fmt.Sprintf(rcp, "kept"), sec, 201, "id")
	f.dropRcp = create("recipient", "POST", "/api/v1/recipients", fmt.Sprintf(rcp, "dropped"), sec, 201, "id")
	f.campaign = create("campaign", "POST", "/api/v1/campaigns", campaignBody, sec, 201, "id")
	incident := `{"detected_at":"2026-01-20T08:00:00Z","nature":"Laptop stolen","data_categories":["contact.email"],` +
		`"likely_consequences":"Low","measures_taken":"Remote wipe","contact_point":"dpo@processor.example","scope":{"tenants":["` + f.b.ID + `"]}}`
	f.incident = create("incident", "POST", "/admin/v1/incidents", incident, op, 201, "id")
	f.updInc = create("incident", "POST", "/admin/v1/incidents", incident, op, 201, "id")
	f.closeInc = create("incident", "POST", "/admin/v1/incidents", incident, op, 201, "id")
	for _, v := range []string{"v2", "v1"} {
		var ids [2]string
		for i := range ids {
			ids[i] = uuid4()
			create("opendsr request", "POST", dsrCollection[v], dsrRouteBody(v, ids[i], f.user), sec, 201, "subject_request_id")
		}
		f.dsr[v] = ids
	}
	return f
}

// campaignBody is a campaign B can create.
const campaignBody = `{"name":"spring","purpose":"marketing","channel":"email",` +
	`"audience":{"traits":[{"key":"plan","op":"eq","value":"pro"}]},"message":{"subject":"Hello","body":"<p>Hi</p>"}}`

var dsrCollection = map[string]string{"v2": "/opendsr/v2/requests", "v1": "/opendsr/v1/opengdpr_requests"}

func dsrRouteBody(version, id, user string) string {
	if version == "v2" {
		return string(dsrBody(id, "erasure", user, time.Now()))
	}
	return `{"subject_request_id":"` + id + `","subject_request_type":"access","api_version":"1.0","submitted_time":"` +
		time.Now().UTC().Format(time.RFC3339) + `","subject_identities":[{"identity_type":"controller_customer_id","identity_value":"` +
		user + `","identity_format":"raw"}]}`
}

// routeCall is how the test calls a route successfully as its rightful
// caller: the path (parameters filled, with a query if need be), the body
// and the status wanted.
type routeCall struct {
	path string
	body string
	want int
}

// successfulCall is the call of r that should succeed, on B's objects.
// Routes not named here are GETs answered 200 with the fixture's ids.
func successfulCall(t *testing.T, f routeFixture, r server.Route) routeCall {
	t.Helper()
	key := r.Method + " " + r.Pattern
	path := fillPath(t, f, r, nil)
	c := routeCall{path: path, want: http.StatusOK}
	switch {
	case r.Method == "OPTIONS":
		c.want = http.StatusNoContent
	case r.Auth == server.AuthWriteKey && r.Pattern == "/v1/privacy":
		c.body, c.want = `{"type":"suppress","anonymousId":"anon-`+randomHex(4)+`"}`, http.StatusCreated
	case r.Auth == server.AuthWriteKey && r.Method == "GET":
	case r.Auth == server.AuthWriteKey:
		c.body = `{"batch":[{"type":"track","event":"E","userId":"` + f.user + `","messageId":"` + randomHex(8) + `"}]}`
		if p := strings.TrimSuffix(r.Pattern, "/{$}"); p != "/v1/batch" && p != "/v1/b" && p != "/beacon/v1/batch" {
			c.body = `{"event":"E","name":"N","userId":"` + f.user + `","groupId":"g1","previousId":"anon-1","messageId":"` + randomHex(8) + `"}`
		}
	}
	switch key {
	case "GET /api/v1/profiles":
		c.path += "?user_id=" + f.user
	case "POST /api/v1/consents":
		c.body, c.want = `{"identity":{"type":"user_id","value":"`+f.user+`"},"purpose":"marketing","channel":"email","granted":true}`, 201
	case "POST /api/v1/requests":
		c.body, c.want = `{"type":"access","identity":{"type":"user_id","value":"`+f.user+`"}}`, 201
	case "POST /api/v1/requests/{id}/extend":
		c.body = `{"months":1,"reason":"many systems to search"}`
	case "POST /api/v1/recipients":
		c.body, c.want = `{"name":"Another","url":"https://other.example/hook","secret":"0123456789abcdef0123"}`, 201
	case "DELETE /api/v1/recipients/{id}", "DELETE /admin/v1/tenants/{id}":
		c.want = http.StatusNoContent
	case "PATCH /api/v1/settings":
		c.body = `{"controller_name":"B Ltd"}`
	case "POST /api/v1/campaigns":
		c.body, c.want = campaignBody, 201
	case "POST /api/v1/campaigns/{id}/send":
		c.want = http.StatusAccepted
	case "GET /u/{token}", "POST /u/{token}", "POST /opendsr/v2/callbacks/{token}":
		c.want = http.StatusNotFound // the token is the credential: a made-up one opens nothing
	case "POST /opendsr/v2/requests":
		c.body, c.want = dsrRouteBody("v2", uuid4(), f.user), 201
	case "POST /opendsr/v1/opengdpr_requests":
		c.body, c.want = dsrRouteBody("v1", uuid4(), f.user), 201
	case "DELETE /opendsr/v2/requests/{id}", "DELETE /opendsr/v1/opengdpr_requests/{id}":
		c.want = http.StatusAccepted
	case "POST /console/{page...}", "POST /privacy/{tenant}/{page...}":
		c.want = http.StatusForbidden // the console's CSRF token authenticates its forms; a call without is refused
	case "POST /admin/v1/tenants":
		c.body, c.want = `{"name":"routes-new"}`, 201
	case "POST /admin/v1/incidents":
		c.body, c.want = `{"detected_at":"2026-01-20T08:00:00Z","nature":"Misconfigured bucket","data_categories":["contact.email"],"likely_consequences":"Low","measures_taken":"Closed","contact_point":"dpo@processor.example","scope":{"tenants":["`+f.b.ID+`"]}}`, 201
	case "POST /admin/v1/incidents/{id}/updates":
		c.body, c.want = `{"message":"More is known"}`, 201
	case "POST /admin/v1/incidents/{id}/close":
		c.body = `{"note":"done"}`
	}
	return c
}

// fillPath puts the fixture's ids into a route's pattern; ids overrides
// them by parameter name.
func fillPath(t *testing.T, f routeFixture, r server.Route, ids map[string]string) string {
	t.Helper()
	dsrID := func(v string, i int) string { return f.dsr[v][i] }
	var value func(name string) string
	value = func(name string) string {
		if v, ok := ids[name]; ok {
			return v
		}
		key := r.Method + " " + r.Pattern
		switch name {
		case "$":
			return ""
		case "subject_id":
			return f.subject
		case "writeKey":
			return f.b.WriteKey
		case "token":
			return "not-a-token-" + randomHex(8)
		case "tenant":
			return f.b.ID
		case "page":
			if key == "GET /privacy/{tenant}/{page...}" {
				return "me" // a subject's page: without a session, the sign-in page
			}
			return "signin"
		case "id":
			switch {
			case key == "POST /api/v1/requests/{id}/cancel":
				return f.pending[0]
			case key == "POST /api/v1/requests/{id}/approve":
				return f.pending[1]
			case key == "POST /api/v1/requests/{id}/reject":
				return f.pending[2]
			case key == "POST /api/v1/requests/{id}/extend":
				return f.pending[3]
			case key == "GET /api/v1/requests/{id}/certificate":
				return f.erased
			case strings.HasPrefix(r.Pattern, "/api/v1/requests/"):
				return f.done
			case key == "DELETE /api/v1/recipients/{id}":
				return f.dropRcp
			case strings.HasPrefix(r.Pattern, "/api/v1/recipients/"):
				return f.recipient
			case strings.HasPrefix(r.Pattern, "/api/v1/campaigns/"):
				return f.campaign
			case key == "POST /admin/v1/incidents/{id}/updates":
				return f.updInc
			case key == "POST /admin/v1/incidents/{id}/close":
				return f.closeInc
			case strings.HasPrefix(r.Pattern, "/api/v1/incidents/"), strings.HasPrefix(r.Pattern, "/admin/v1/incidents/"):
				return f.incident
			case key == "POST /admin/v1/tenants/{id}/keys/rotate":
				return f.c.ID
			case key == "DELETE /admin/v1/tenants/{id}":
				return f.d.ID
			case strings.HasPrefix(r.Pattern, "/admin/v1/tenants/"):
				return f.b.ID
			case r.OpenDSR != "" && r.Method == "DELETE":
				return dsrID(r.OpenDSR, 1)
			case r.OpenDSR != "":
				return dsrID(r.OpenDSR, 0)
			}
		}
		t.Errorf("route %s: no test object for {%s}: add one to fillPath in routes_e2e_test.go", key, name)
		return "unknown"
	}
	return regexp.MustCompile(`\{([^}.]+)(\.\.\.)?\}`).ReplaceAllStringFunc(r.Pattern, func(m string) string {
		return value(strings.Trim(strings.TrimSuffix(m, "...}"), "{}"))
	})
}

// errorShape reports whether body is an error in the OpenDSR shape
// (a numeric error.code), rather than Custos' (a string code).
func errorShape(body []byte) string {
	var e struct {
		Error struct {
			Code json.RawMessage `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error.Code) == 0 {
		return "none"
	}
	if e.Error.Code[0] == '"' {
		return "custos"
	}
	return "opendsr"
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	doc := readAPIDoc(t)
	routes := server.Routes()
	f := newRouteFixture(t, srv)

	// Every route has a class, and docs/api.md lists it with that class.
	for _, r := range routes {
		key := r.Method + " " + strings.TrimSuffix(r.Pattern, "/{$}")
		if r.Auth < server.AuthNone || r.Auth > server.AuthMetrics {
			t.Errorf("route %s %s has no authentication class (Auth %d)", r.Method, r.Pattern, r.Auth)
		}
		d, ok := doc.routes[key]
		if !ok {
			t.Errorf("route %s is not in the Routes table of docs/api.md", key)
		} else if d.auth != r.Auth.String() {
			t.Errorf("docs/api.md lists %s with auth %q; the route table says %q", key, d.auth, r.Auth.String())
		}
	}

	b, op := f.b, "Bearer "+srv.cfg.token
	creds := map[string]string{
		"none": "", "wrong bearer": "Bearer sk_wrong_" + randomHex(8), "wrong basic": basicAuth("wk_wrong_" + randomHex(8)),
		"write key": basicAuth(b.WriteKey), "write key as bearer": "Bearer " + b.WriteKey,
		"secret key": "Bearer " + b.SecretKey, "secret key as basic": basicAuth(b.SecretKey), "operator": op,
	}
	// refused lists, per class, the credentials that must be refused and
	// how: 401 with a challenge, or 403 for a valid key of the wrong kind.
	refused := map[server.Auth]map[string]int{
		server.AuthSecretKey: {"none": 401, "wrong bearer": 401, "wrong basic": 401, "write key as bearer": 403, "write key": 403, "operator": 401},
		server.AuthOperator:  {"none": 401, "wrong bearer": 401, "secret key": 401, "write key as bearer": 401},
		server.AuthMetrics:   {"none": 401, "wrong bearer": 401, "secret key": 401, "write key as bearer": 401},
		server.AuthWriteKey:  {"none": 401, "wrong basic": 401, "secret key as basic": 401, "operator": 401},
	}
	rightful := map[server.Auth]string{server.AuthSecretKey: "secret key", server.AuthOperator: "operator",
		server.AuthMetrics: "operator", server.AuthWriteKey: "write key", server.AuthNone: "none"}

	// Authentication, before anything changes.
	for _, r := range routes {
		call := successfulCall(t, f, r)
		names := make([]string, 0, len(refused[r.Auth]))
		for n := range refused[r.Auth] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, cred := range names {
			want := refused[r.Auth][cred]
			got := srv.do(t, r.Method, call.path, []byte(call.body), "Authorization", creds[cred], "Content-Type", "application/json")
			what := fmt.Sprintf("%s %s with %s", r.Method, r.Pattern, cred)
			if got.status != want {
				t.Errorf("%s: status %d, want %d; body %s", what, got.status, want, got.body)
				continue
			}
			if want == 401 && got.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", what)
			}
			shape := "custos"
			if r.OpenDSR != "" {
				shape = "opendsr"
			}
			if s := errorShape(got.body); s != shape {
				t.Errorf("%s: error in the %s shape, want %s: %s", what, s, shape, got.body)
			}
		}
	}

	// Tenant isolation: A's secret key on B's objects finds nothing and
	// changes nothing, and no answer to A names any of B's objects.
	before := tenantSnapshot(t, srv, f)
	for _, r := range routes {
		if r.Auth != server.AuthSecretKey {
			continue
		}
		call := successfulCall(t, f, r)
		got := srv.do(t, r.Method, call.path, []byte(call.body), "Authorization", "Bearer "+f.a.SecretKey, "Content-Type", "application/json")
		what := fmt.Sprintf("%s %s with tenant A's key", r.Method, call.path)
		if strings.Contains(r.Pattern, "{") && got.status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404 (the object is tenant B's); body %s", what, got.status, got.body)
		}
		// An error may repeat the id asked about; nothing else of B's.
		var others []string
		for _, id := range f.ids() {
			if !strings.Contains(call.path, id) {
				others = append(others, id)
			}
		}
		assertNoneOf(t, what, got.body, others)
	}
	if after := tenantSnapshot(t, srv, f); !slices.Equal(before, after) {
		t.Errorf("tenant A's calls changed tenant B's objects:\nbefore %v\nafter  %v", before, after)
	}

	// Each route as its rightful caller: the status wanted, and only
	// documented fields in the answer.
	for _, r := range routes {
		call := successfulCall(t, f, r)
		headers := []string{"Content-Type", "application/json"}
		if c := creds[rightful[r.Auth]]; c != "" {
			headers = append(headers, "Authorization", c)
		}
		got := srv.do(t, r.Method, call.path, []byte(call.body), headers...)
		what := fmt.Sprintf("%s %s", r.Method, call.path)
		if got.status != call.want {
			t.Errorf("%s: status %d, want %d; body %s (a new route needs its successful call in successfulCall)", what, got.status, call.want, got.body)
			continue
		}
		d := doc.routes[r.Method+" "+strings.TrimSuffix(r.Pattern, "/{$}")]
		isJSON := strings.HasPrefix(got.header.Get("Content-Type"), "application/json")
		if !isJSON || got.status >= 300 {
			continue
		}
		var v any
		if err := json.Unmarshal(got.body, &v); err != nil {
			t.Errorf("%s: decode %s: %v", what, got.body, err)
			continue
		}
		if os.Getenv("DUMP_FIELDS") != "" {
			dumpPaths(r.Method+" "+r.Pattern, v, "")
		}
		if d.resource == "" {
			t.Errorf("%s answers JSON, but docs/api.md names no resource for it", what)
			continue
		}
		allowed, free := doc.fields(t, d.resource)
		for _, p := range undocumented(v, "", allowed, free) {
			t.Errorf("%s: field %s is not documented in docs/api.md#%s", what, p, d.resource)
		}
	}

	// Every route has been called: the audit chains name their actors one
	// way.
	checkAuditActors(t, srv, "/api/v1/audit", "Authorization", "Bearer "+f.b.SecretKey)
	checkAuditActors(t, srv, "/admin/v1/audit", "Authorization", op)
	// The changes made through the routes left their entries.
	for _, c := range []struct {
		path, auth string
		want       []string
	}{
		{"/api/v1/audit", "Bearer " + f.b.SecretKey, []string{"tenant.create", "settings.update", "consent.grant", "profile.read",
			"events.read", "consents.read", "request.received", "recipient.created", "incident.acknowledge"}},
		{"/admin/v1/audit", op, []string{"tenant.create", "tenant.keys.rotate", "tenant.delete", "incident.open", "incident.update", "incident.close"}},
		{"/admin/v1/audit?tenant=" + f.c.ID, op, []string{"tenant.create", "tenant.keys.rotate"}},
	} {
		actions := srv.page(t, c.path, "entries", "action", 1000, "Authorization", c.auth)
		for _, w := range c.want {
			if !slices.Contains(actions, w) {
				t.Errorf("%s: no %s entry among %v", c.path, w, actions)
			}
		}
	}
}

// auditActors are the actors audit entries may name, one spelling each
// (docs/api.md, "Audit actors").
var auditActors = []string{"tenant:secret-key", "device:write-key", "opendsr:controller", "operator",
	"subject:unsubscribe-link", "subject:privacy-center", "system", "system:retention", "system:ingest", "custos:opendsr"}

// consoleActor matches the actor of a person in the console.
var consoleActor = regexp.MustCompile(`^console:(user|secret-key|operator):.+$`)

// checkAuditActors fails on an audit entry of a chain whose actor is not
// spelled as documented.
func checkAuditActors(t *testing.T, srv *testServer, path string, headers ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, raw := range srv.page(t, path, "entries", "actor", 1000, headers...) {
		seen[raw] = true
	}
	for actor := range seen {
		if !slices.Contains(auditActors, actor) && !consoleActor.MatchString(actor) {
			t.Errorf("%s: actor %q is not one of the documented spellings %v", path, actor, auditActors)
		}
	}
	if len(seen) == 0 {
		t.Errorf("%s: no audit entries", path)
	}
}

// tenantSnapshot is what tenant B can see of the objects A's calls aim at.
func tenantSnapshot(t *testing.T, srv *testServer, f routeFixture) []string {
	t.Helper()
	sec := []string{"Authorization", "Bearer " + f.b.SecretKey}
	var out []string
	get := func(path string, fields ...string) {
		r := srv.do(t, "GET", path, nil, sec...)
		var m map[string]any
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("snapshot GET %s: %d %s: %v", path, r.status, r.body, err)
		}
		for _, k := range fields {
			out = append(out, fmt.Sprintf("%s %s=%v", path, k, m[k]))
		}
	}
	for _, id := range append([]string{f.done, f.erased}, f.pending...) {
		get("/api/v1/requests/"+id, "status", "due_at")
	}
	get("/api/v1/recipients", "recipients")
	get("/api/v1/campaigns/"+f.campaign, "status")
	get("/api/v1/incidents/"+f.incident, "acknowledged_at")
	get("/api/v1/settings", "controller_name")
	get("/api/v1/profiles/"+f.subject+"/consents", "history")
	for v, ids := range f.dsr {
		for _, id := range ids {
			get(dsrCollection[v]+"/"+id, "request_status")
		}
	}
	sort.Strings(out)
	return out
}

// dumpPaths prints every field path of an answer. With DUMP_FIELDS=1,
// TestRoutes prints them for each route: a start for documenting a new
// route's resource in docs/api.md. It asserts nothing.
func dumpPaths(what string, v any, path string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			p := join(path, k)
			fmt.Printf("DUMP %s\t%s\t%T\n", what, p, c)
			dumpPaths(what, c, p)
		}
	case []any:
		for _, c := range x {
			dumpPaths(what, c, path+"[]")
		}
	}
}
