package opendsr

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeProcessor is a processor over httptest: it signs every answer with
// its current key, which the test can rotate, and counts certificate
// fetches.
type fakeProcessor struct {
	srv        *httptest.Server
	mu         sync.Mutex
	key        crypto.Signer
	certPEM    []byte
	domain     string
	certFetch  atomic.Int32
	status     atomic.Int32 // answer status of /requests/{id}; 0: 200
	lastBearer atomic.Value
}

func newPair(t *testing.T, domain string) (crypto.Signer, []byte, *x509.Certificate) {
	t.Helper()
	certPEM, keyPEM, err := SelfSigned(domain, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair.PrivateKey.(crypto.Signer), certPEM, pair.Leaf
}

func newFakeProcessor(t *testing.T, domain string) *fakeProcessor {
	p := &fakeProcessor{domain: domain}
	p.key, p.certPEM, _ = newPair(t, domain)
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, status int, v any) {
		body, _ := json.Marshal(v)
		p.mu.Lock()
		sig, _ := Sign(p.key, body)
		p.mu.Unlock()
		w.Header().Set(HeaderProcessorDomain, p.domain)
		w.Header().Set(HeaderSignature, sig)
		w.WriteHeader(status)
		w.Write(body)
	}
	mux.HandleFunc("GET /opendsr/v2/discovery", func(w http.ResponseWriter, r *http.Request) {
		p.lastBearer.Store(r.Header.Get("Authorization"))
		answer(w, 200, Discovery{APIVersion: APIVersion, ProcessorCertificate: p.srv.URL + "/cert"})
	})
	mux.HandleFunc("GET /cert", func(w http.ResponseWriter, r *http.Request) {
		p.certFetch.Add(1)
		p.mu.Lock()
		w.Write(p.certPEM)
		p.mu.Unlock()
	})
	mux.HandleFunc("GET /opendsr/v2/requests/{id}", func(w http.ResponseWriter, r *http.Request) {
		if s := int(p.status.Load()); s != 0 {
			answer(w, s, NewError(s, "busy").Response())
			return
		}
		answer(w, 200, StatusResponse{SubjectRequestID: r.PathValue("id"), RequestStatus: StatusCompleted})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeProcessor) rotate(t *testing.T) {
	key, certPEM, _ := newPair(t, p.domain)
	p.mu.Lock()
	p.key, p.certPEM = key, certPEM
	p.mu.Unlock()
}

func TestClient(t *testing.T) {
	fp := newFakeProcessor(t, "localhost")
	_, _, pinned := newPair(t, "localhost")
	block := func() *x509.Certificate {
		fp.mu.Lock()
		defer fp.mu.Unlock()
		c, err := parsePEM(fp.certPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := fp.srv.URL + "/opendsr/v2"
	c := NewClient(ClientOptions{})
	p := Processor{BaseURL: base, Domain: "localhost", Token: "sk_b", Pinned: block()}
	const id = "0b5c2e8e-6a43-4b7a-9a4f-6a2f1c1e7d11"

	// Discovery is fetched once; the certificate is cached.
	for range 3 {
		if _, err := c.Status(t.Context(), p, id); err != nil {
			t.Fatalf("Status: %v", err)
		}
	}
	if n := fp.certFetch.Load(); n != 1 {
		t.Errorf("certificate fetched %d times for 3 calls, want 1 (cached)", n)
	}
	if got := fp.lastBearer.Load(); got != "Bearer sk_b" {
		t.Errorf("Authorization = %v, want the Bearer token", got)
	}

	// A rotated certificate is fetched again once, on the first signature
	// that fails; with a pin on the new one, calls go on.
	fp.rotate(t)
	p2 := p
	p2.Pinned = block()
	if _, err := c.Status(t.Context(), p2, id); err != nil {
		t.Fatalf("Status after rotation, new pin: %v", err)
	}
	// The old pin refuses the new certificate, naming why.
	_, err := c.Status(t.Context(), p, id)
	var ce *CallError
	if !errors.As(err, &ce) || !ce.Untrusted || ce.Temporary || !strings.Contains(ce.Message, "pinned") {
		t.Errorf("Status with the old pin after rotation = %v, want an untrusted error naming the pin", err)
	}

	// Other refusals.
	for _, tc := range []struct {
		name string
		p    Processor
		want string
	}{
		{"another pin", Processor{BaseURL: base, Domain: "localhost", Pinned: pinned}, "pinned"},
		{"another domain", Processor{BaseURL: base, Domain: "other.example", Pinned: p2.Pinned}, "other.example"},
		{"no pin, untrusted root", Processor{BaseURL: base, Domain: "localhost"}, "not trusted"},
	} {
		_, err := c.Status(t.Context(), tc.p, id)
		if !errors.As(err, &ce) || ce.Temporary || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a final error naming %q", tc.name, err, tc.want)
		}
	}

	// 503 is temporary; nobody answering is temporary.
	fp.status.Store(503)
	if _, err := c.Status(t.Context(), p2, id); !Temporary(err) {
		t.Errorf("Status on 503 = %v, want temporary", err)
	}
	fp.status.Store(0)
	down := Processor{BaseURL: "http://127.0.0.1:1/opendsr/v2", Domain: "localhost", Pinned: p2.Pinned}
	if _, err := c.Status(t.Context(), down, id); !Temporary(err) {
		t.Errorf("Status with nobody listening = %v, want temporary", err)
	}

	// An expired pinned certificate is refused.
	late := NewClient(ClientOptions{Now: func() time.Time { return time.Now().Add(2 * 365 * 24 * time.Hour) }})
	if _, err := late.Status(t.Context(), p2, id); err == nil || !strings.Contains(err.Error(), "not now") {
		t.Errorf("Status with an expired certificate = %v, want refused", err)
	}
}

func TestNewSubjectRequestID(t *testing.T) {
	for range 100 {
		if id := NewSubjectRequestID(); !isUUIDv4(id) {
			t.Fatalf("NewSubjectRequestID() = %q, not a lowercase UUID v4", id)
		}
	}
}

func parsePEM(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(blk.Bytes)
}
