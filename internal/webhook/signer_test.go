package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/webhook"
)

// headerSigner signs with a fixed header, or fails while err is set.
type headerSigner struct{ err error }

func (s *headerSigner) SignHeaders(body []byte) (http.Header, error) {
	if s.err != nil {
		return nil, s.err
	}
	h := http.Header{}
	h.Set("X-Test-Signature", "signed:"+string(body[:8]))
	return h, nil
}

// TestSigners checks that a delivery naming a signer is signed by it
// instead of the HMAC, that a failing signer is retried later, and that a
// delivery naming a signer the node lacks fails for good.
func TestSigners(t *testing.T) {
	e := newEnv(t)
	rcv := newReceiver(t, e.clock.Now)
	signer := &headerSigner{err: errors.New("key not loaded")}
	o := e.outbox(rcv.srv.Client(), webhook.Options{Signers: map[string]webhook.Signer{"test": signer}})
	enqueue := func(signing string) custos.Delivery {
		t.Helper()
		d, err := o.Enqueue(context.Background(), custos.Delivery{Tenant: e.tenant, Kind: "opendsr.status", RequestID: testRequest,
			Target: "callback", URL: rcv.srv.URL, Signing: signing, Body: testBody})
		if err != nil {
			t.Fatalf("Enqueue(signing %q) = %v", signing, err)
		}
		return d
	}
	d := enqueue("test")
	deliverDue(t, o, 0)
	if got := e.delivery(d.ID); got.Final || got.Attempts != 1 || !strings.Contains(got.LastError, "key not loaded") {
		t.Errorf("after a failing signer: %+v; want a retry later naming the cause", got)
	}
	signer.err = nil
	e.clock.Set(e.clock.Now().Add(e.delivery(d.ID).NextAt.Sub(e.clock.Now())))
	deliverDue(t, o, 1)
	hits := rcv.Hits()
	if len(hits) != 1 || hits[0].header.Get("X-Test-Signature") != "signed:"+string(testBody[:8]) || hits[0].header.Get(webhook.HeaderSignature) != "" {
		t.Fatalf("POSTs = %+v; want one signed by the test signer and carrying no HMAC", hits)
	}
	if got := e.delivery(d.ID); !got.Final || got.DeliveredAt.IsZero() {
		t.Errorf("after the signed POST: %+v; want delivered", got)
	}

	u := enqueue("missing")
	deliverDue(t, o, 0)
	if got := e.delivery(u.ID); !got.Final || !strings.Contains(got.LastError, `"missing"`) {
		t.Errorf("delivery naming an unknown signer: %+v; want final, naming the signer", got)
	}
	if _, err := o.Enqueue(context.Background(), custos.Delivery{Tenant: e.tenant, Kind: "k", URL: rcv.srv.URL, Body: testBody}); err == nil {
		t.Errorf("a delivery with neither secret nor signer was accepted")
	}
}
