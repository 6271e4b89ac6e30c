package loadgen

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// capture is a Segment endpoint for tests: it decodes every request the
// way a server would and keeps what it received.
type capture struct {
	t *testing.T
	// respond, if set, answers the nth request (from 1) instead of 200.
	respond func(w http.ResponseWriter, r *http.Request, n int) bool
	// cutShort, if set, says whether the client may have hung up during a
	// request (a cancelled run): its body may end early, and that is no
	// error of the client's encoding.
	cutShort func() bool

	mu   sync.Mutex
	reqs []capturedRequest
	n    int
}

type capturedRequest struct {
	path        string
	user, pass  string
	basicAuth   bool
	contentType string
	encoding    string
	batchID     string // batch requests only
	sentAt      string // of the batch, or of a single message
	library     string // context.library.name, batch-level or in the single message
	msgs        []capturedMessage
}

type capturedMessage struct {
	size        int // bytes of the serialised message
	Type        string
	MessageID   string `json:"messageId"`
	UserID      string `json:"userId"`
	AnonymousID string `json:"anonymousId"`
	Event       string
	Timestamp   string
	SentAt      string `json:"sentAt"`
	Context     struct {
		IP        string
		Locale    string
		UserAgent string `json:"userAgent"`
		Page      *struct{ Path string }
		App       *struct{ Name, Version string }
		Library   *struct{ Name, Version string }
	}
	Properties map[string]any
	Traits     map[string]any
}

func newCapture(t *testing.T) (*capture, *httptest.Server) {
	t.Helper()
	c := &capture{t: t}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, srv
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	if c.respond != nil && c.respond(w, r, n) {
		return
	}
	req, err := decodeRequest(r)
	if err != nil && c.cutShort != nil && c.cutShort() && errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	if err != nil {
		c.t.Errorf("request %d to %s: %v", n, r.URL.Path, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"success":true}`)
}

func decodeRequest(r *http.Request) (capturedRequest, error) {
	req := capturedRequest{
		path:        r.URL.Path,
		contentType: r.Header.Get("Content-Type"),
		encoding:    r.Header.Get("Content-Encoding"),
	}
	req.user, req.pass, req.basicAuth = r.BasicAuth()
	var body io.Reader = r.Body
	if req.encoding == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return req, err
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return req, err
	}
	var msgs []json.RawMessage
	if r.URL.Path == "/v1/batch" {
		var b struct {
			MessageID string `json:"messageId"`
			SentAt    string `json:"sentAt"`
			Batch     []json.RawMessage
			Context   struct{ Library struct{ Name string } }
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			return req, err
		}
		req.batchID, req.sentAt, req.library = b.MessageID, b.SentAt, b.Context.Library.Name
		msgs = b.Batch
	} else {
		msgs = []json.RawMessage{raw}
	}
	for _, m := range msgs {
		var cm capturedMessage
		if err := json.Unmarshal(m, &cm); err != nil {
			return req, err
		}
		cm.size = len(m)
		if r.URL.Path != "/v1/batch" {
			req.sentAt = cm.SentAt
			if cm.Context.Library != nil {
				req.library = cm.Context.Library.Name
			}
		}
		req.msgs = append(req.msgs, cm)
	}
	return req, nil
}

// received returns the requests received so far.
func (c *capture) received() []capturedRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]capturedRequest(nil), c.reqs...)
}

// hits returns how many requests arrived, decoded or not.
func (c *capture) hits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
