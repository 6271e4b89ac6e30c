package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/batch", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	return mux
}

func TestJSONUnmatched(t *testing.T) {
	h := jsonUnmatched(Deps{}, testMux())
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"POST", "/v1/batch", 200, ""},
		{"GET", "/v1/batch", 405, "method_not_allowed"},
		{"GET", "/nowhere", 404, "not_found"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.status)
		}
		if c.code == "" {
			continue
		}
		var body errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || string(body.Error.Code) != c.code || body.Error.Message == "" {
			t.Errorf("%s %s: body %q (%v); want a JSON error %s", c.method, c.path, w.Body.String(), err, c.code)
		}
		if c.status == 405 && w.Header().Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", c.method, c.path)
		}
	}
}

// BenchmarkRouting measures what the JSON 404/405 wrapper adds to a
// matched route: one more pattern lookup.
func BenchmarkRouting(b *testing.B) {
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"mux", testMux()}, {"jsonUnmatched", jsonUnmatched(Deps{}, testMux())}} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("POST", "/v1/batch", nil)
			w := httptest.NewRecorder()
			for b.Loop() {
				c.h.ServeHTTP(w, r)
			}
		})
	}
}
