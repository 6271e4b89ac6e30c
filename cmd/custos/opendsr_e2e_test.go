package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/testenv"
)

// dsrClient talks to the OpenDSR API of a server as one tenant's
// controller and checks the signature of every answer.
type dsrClient struct {
	srv  *testServer
	key  string
	cert *x509.Certificate // set by discover
}

// do sends a request and, once the certificate is known, verifies the
// answer's X-OpenDSR-Signature over its exact body.
func (c *dsrClient) do(t *testing.T, method, path string, body []byte) response {
	t.Helper()
	r := c.srv.do(t, method, path, body, "Authorization", "Bearer "+c.key, "Content-Type", "application/json")
	c.checkSigned(t, method+" "+path, r)
	return r
}

func (c *dsrClient) checkSigned(t *testing.T, what string, r response) {
	t.Helper()
	if got, want := r.header.Get(opendsr.HeaderProcessorDomain), "localhost"; got != want {
		t.Errorf("%s: %s = %q, want %q", what, opendsr.HeaderProcessorDomain, got, want)
	}
	if c.cert == nil {
		return
	}
	if err := opendsr.Verify(c.cert, r.body, r.header.Get(opendsr.HeaderSignature)); err != nil {
		t.Errorf("%s: signature of %s: %v", what, r.body, err)
	}
}

// discover reads the discovery document and fetches the certificate it
// names, which from then on verifies every answer (the discovery answer
// included).
func (c *dsrClient) discover(t *testing.T) opendsr.Discovery {
	t.Helper()
	r := c.do(t, "GET", "/opendsr/v2/discovery", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET discovery: %d %s", r.status, r.body)
	}
	var d opendsr.Discovery
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatalf("GET discovery: decode %s: %v", r.body, err)
	}
	if !strings.HasPrefix(d.ProcessorCertificate, c.srv.URL+"/") {
		t.Fatalf("processor_certificate = %q, want a URL on %s", d.ProcessorCertificate, c.srv.URL)
	}
	path := strings.TrimPrefix(d.ProcessorCertificate, c.srv.URL)
	cr := c.srv.do(t, "GET", path, nil) // public: no key
	if cr.status != http.StatusOK || cr.header.Get("Content-Type") != "application/x-pem-file" {
		t.Fatalf("GET %s: %d %s %s", path, cr.status, cr.header.Get("Content-Type"), cr.body)
	}
	block, _ := pem.Decode(cr.body)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("GET %s: not a PEM certificate: %s", path, cr.body)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if err := opendsr.CheckDomain(cert, r.header.Get(opendsr.HeaderProcessorDomain)); err != nil {
		t.Errorf("certificate: %v", err)
	}
	c.cert = cert
	c.checkSigned(t, "GET discovery", r)
	c.checkSigned(t, "GET "+path, cr)
	return d
}

// dsrBody is a request body for a raw controller_customer_id.
func dsrBody(id, typ, user string, submitted time.Time) []byte {
	return []byte(`{"regulation":"gdpr","subject_request_id":"` + id + `","subject_request_type":"` + typ + `",` +
		`"submitted_time":"` + submitted.UTC().Format(time.RFC3339) + `","api_version":"2.0",` +
		`"subject_identities":[{"identity_type":"controller_customer_id","identity_value":"` + user + `","identity_format":"raw"}]}`)
}

// uuid4 returns a random lowercase UUID v4.
func uuid4() string {
	h := []byte(randomHex(16))
	h[12] = '4'
	h[16] = "89ab"[h[16]%4]
	return string(h[:8]) + "-" + string(h[8:12]) + "-" + string(h[12:16]) + "-" + string(h[16:20]) + "-" + string(h[20:])
}

// dsrError decodes an answer in the specification's error shape.
func dsrError(t *testing.T, what string, r response) opendsr.Error {
	t.Helper()
	var e opendsr.ErrorResponse
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == nil {
		t.Fatalf("%s: %s is not an OpenDSR error (%v)", what, r.body, err)
	}
	if e.Error.Code != r.status {
		t.Errorf("%s: error.code %d, status %d; want them equal", what, e.Error.Code, r.status)
	}
	return *e.Error
}

func TestOpenDSR(t *testing.T) {
	t.Parallel()
	cfg := newServerConfig(t)
	srv := startServer(t, cfg)
	a, b := srv.createTenant(t, "controller-a"), srv.createTenant(t, "controller-b")
	ca := &dsrClient{srv: srv, key: a.SecretKey}

	d := ca.discover(t)
	var ids []string
	for _, si := range d.SupportedIdentities {
		ids = append(ids, si.IdentityType+"/"+si.IdentityFormat)
	}
	wantIDs := []string{"controller_customer_id/raw", "email/raw", "android_advertising_id/raw",
		"ios_advertising_id/raw", "ios_vendor_id/raw", "android_id/raw", "email/sha256"}
	if d.APIVersion != "2.0" || !reflect.DeepEqual(ids, wantIDs) ||
		!reflect.DeepEqual(d.SupportedSubjectRequestTypes, []string{"access", "portability", "erasure"}) {
		t.Errorf("discovery = %+v, want api 2.0, identities %v, types access, portability, erasure", d, wantIDs)
	}

	user := "dsr-" + randomHex(6)
	srv.ingest(t, a.WriteKey, "/v1/batch", batchBody(t, "", trackMessages(user, "d1-"+randomHex(4), 3)))
	srv.findProfile(t, a.SecretKey, "user_id", user)

	// An erasure over OpenDSR: acknowledged, completed, the subject gone.
	reqID := uuid4()
	body := dsrBody(reqID, "erasure", user, time.Now().Add(-time.Minute))
	first := ca.do(t, "POST", "/opendsr/v2/requests", body)
	if first.status != http.StatusCreated {
		t.Fatalf("POST erasure: %d %s", first.status, first.body)
	}
	var ack opendsr.RequestResponse
	if err := json.Unmarshal(first.body, &ack); err != nil {
		t.Fatalf("POST erasure: decode %s: %v", first.body, err)
	}
	if ack.SubjectRequestID != reqID || ack.ControllerID != a.ID || ack.ExpectedCompletionTime.Before(ack.ReceivedTime.Add(27*24*time.Hour)) {
		t.Errorf("acknowledgement = %+v, want id %s, controller %s, due a month after receipt", ack, reqID, a.ID)
	}
	if enc, _ := base64.StdEncoding.DecodeString(ack.EncodedRequest); !bytes.Equal(enc, body) {
		t.Errorf("encoded_request decodes to %s, want the body sent", enc)
	}
	if err := opendsr.Verify(ca.cert, body, ack.ProcessorSignature); err != nil {
		t.Errorf("processor_signature over the request body: %v", err)
	}
	var status opendsr.StatusResponse
	testenv.Poll(t, 5*time.Second, "the erasure completed", func() bool {
		r := ca.do(t, "GET", "/opendsr/v2/requests/"+reqID, nil)
		if r.status != http.StatusOK {
			t.Fatalf("GET status: %d %s", r.status, r.body)
		}
		status = opendsr.StatusResponse{}
		if err := json.Unmarshal(r.body, &status); err != nil {
			t.Fatalf("GET status: %v in %s", err, r.body)
		}
		return status.RequestStatus == opendsr.StatusCompleted
	}, func() string { return "status " + status.RequestStatus })
	if status.SubjectRequestID != reqID || status.ControllerID != a.ID || status.ResultsURL != "" || status.ResultsCount != nil {
		t.Errorf("status = %+v, want the request's, with no results", status)
	}
	if r := srv.lookup(t, a.SecretKey, "user_id", user); r.status != http.StatusNotFound {
		t.Errorf("profile after an OpenDSR erasure: %d, want 404", r.status)
	}

	// Idempotent resubmission: the same acknowledgement, its
	// processor_signature made anew (ECDSA signatures are randomised) over
	// the same request body.
	again := ca.do(t, "POST", "/opendsr/v2/requests", body)
	var ack1, ack2 opendsr.RequestResponse
	json.Unmarshal(first.body, &ack1)
	json.Unmarshal(again.body, &ack2)
	sig2 := ack2.ProcessorSignature
	ack1.ProcessorSignature, ack2.ProcessorSignature = "", ""
	if again.status != http.StatusCreated || !reflect.DeepEqual(ack1, ack2) {
		t.Errorf("same body again: %d %s, want 201 and the first answer %s", again.status, again.body, first.body)
	}
	if err := opendsr.Verify(ca.cert, body, sig2); err != nil {
		t.Errorf("resubmission's processor_signature: %v", err)
	}
	changed := dsrBody(reqID, "access", user, time.Now().Add(-time.Minute))
	if r := ca.do(t, "POST", "/opendsr/v2/requests", changed); r.status != http.StatusConflict {
		t.Errorf("same id, other body: %d %s, want 409", r.status, r.body)
	} else {
		dsrError(t, "same id, other body", r)
	}

	// A completed request cannot be cancelled.
	if r := ca.do(t, "DELETE", "/opendsr/v2/requests/"+reqID, nil); r.status != http.StatusConflict {
		t.Errorf("DELETE a completed request: %d %s, want 409", r.status, r.body)
	} else if e := dsrError(t, "DELETE", r); !strings.Contains(e.Message, "completed") {
		t.Errorf("DELETE refusal %q does not name the status", e.Message)
	}

	// An access request reports where its result is.
	accID := uuid4()
	if r := ca.do(t, "POST", "/opendsr/v2/requests", dsrBody(accID, "access", "someone-"+randomHex(4), time.Now())); r.status != http.StatusCreated {
		t.Fatalf("POST access: %d %s", r.status, r.body)
	}
	r := ca.do(t, "GET", "/opendsr/v2/requests/"+accID, nil)
	json.Unmarshal(r.body, &status)
	if status.RequestStatus != opendsr.StatusCompleted || !strings.HasPrefix(status.ResultsURL, srv.URL+"/api/v1/requests/") {
		t.Errorf("access status = %s, want completed with a results_url", r.body)
	} else if res := srv.do(t, "GET", strings.TrimPrefix(status.ResultsURL, srv.URL), nil, "Authorization", "Bearer "+a.SecretKey); res.status != http.StatusOK {
		t.Errorf("GET results_url: %d %s", res.status, res.body)
	}

	// Validation errors, in the specification's shape, name the field.
	for _, tc := range []struct {
		name, body, reason, field string
	}{
		{"no regulation", strings.Replace(string(dsrBody(uuid4(), "erasure", "u", time.Now())), `"regulation":"gdpr",`, "", 1), opendsr.ReasonRequired, "regulation"},
		{"bad id", string(dsrBody("not-a-uuid", "erasure", "u", time.Now())), opendsr.ReasonInvalid, "subject_request_id"},
		{"rectification", string(dsrBody(uuid4(), "rectification", "u", time.Now())), opendsr.ReasonUnsupported, "subject_request_type"},
		{"sha256 only", strings.Replace(string(dsrBody(uuid4(), "erasure", strings.Repeat("ab", 32), time.Now())), `"raw"`, `"sha256"`, 1), opendsr.ReasonUnsupported, "sha256"},
		{"not json", "{", opendsr.ReasonMalformed, "JSON"},
	} {
		r := ca.do(t, "POST", "/opendsr/v2/requests", []byte(tc.body))
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", tc.name, r.status, r.body)
			continue
		}
		e := dsrError(t, tc.name, r)
		if len(e.Errors) == 0 || e.Errors[0].Domain != opendsr.DomainValidation || e.Errors[0].Reason != tc.reason || !strings.Contains(e.Errors[0].Message, tc.field) {
			t.Errorf("%s: %s, want a Validation error, reason %q, naming %q", tc.name, r.body, tc.reason, tc.field)
		}
	}

	// Keys: a write key is refused; another tenant sees nothing.
	cw := &dsrClient{srv: srv, key: a.WriteKey, cert: ca.cert}
	if r := cw.do(t, "GET", "/opendsr/v2/discovery", nil); r.status != http.StatusForbidden {
		t.Errorf("discovery with a write key: %d, want 403", r.status)
	}
	if r := cw.do(t, "POST", "/opendsr/v2/requests", dsrBody(uuid4(), "erasure", user, time.Now())); r.status != http.StatusForbidden {
		t.Errorf("POST with a write key: %d, want 403", r.status)
	}
	cb := &dsrClient{srv: srv, key: b.SecretKey, cert: ca.cert}
	if r := cb.do(t, "GET", "/opendsr/v2/requests/"+reqID, nil); r.status != http.StatusNotFound {
		t.Errorf("tenant B reads tenant A's request: %d %s, want 404", r.status, r.body)
	}
	if r := cb.do(t, "DELETE", "/opendsr/v2/requests/"+reqID, nil); r.status != http.StatusNotFound {
		t.Errorf("tenant B cancels tenant A's request: %d %s, want 404", r.status, r.body)
	}

	if !bytes.Contains(srv.logs.Bytes(), []byte("self-signed development certificate")) {
		t.Error("no warning that the OpenDSR certificate is for development only")
	}

	// The request record is the mapping: after a restart the request is
	// still found, and a resubmission is still recognised.
	srv.stop(t)
	srv = startServer(t, cfg)
	cr := &dsrClient{srv: srv, key: a.SecretKey, cert: ca.cert}
	if r := cr.do(t, "GET", "/opendsr/v2/requests/"+reqID, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"request_status":"completed"`) {
		t.Errorf("status after a restart: %d %s, want completed", r.status, r.body)
	}
	if r := cr.do(t, "POST", "/opendsr/v2/requests", body); r.status != http.StatusCreated {
		t.Errorf("resubmission after a restart: %d %s, want 201", r.status, r.body)
	}
}
