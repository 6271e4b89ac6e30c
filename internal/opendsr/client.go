package opendsr

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos/internal/urlpolicy"
)

// Processor is what a controller needs to talk to one processor: where it
// is, the domain its certificate must be issued for, the credential it
// presents, and optionally the one certificate it accepts.
type Processor struct {
	// BaseURL is the processor's OpenDSR base, e.g.
	// https://processor.example/opendsr/v2 (no trailing slash needed).
	BaseURL string
	// Domain is the processor domain: its certificate's SAN must name it
	// and every signed answer must carry it in HeaderProcessorDomain.
	Domain string
	// Token is presented as "Authorization: Bearer <Token>".
	Token string
	// Pinned, if set, is the only processor certificate accepted;
	// otherwise the certificate must chain to a trusted root.
	Pinned *x509.Certificate
}

// ClientOptions configures a Client. The zero value is usable.
type ClientOptions struct {
	// HTTP makes the calls. The default times out after 10 seconds and
	// follows no redirect: a credential goes only where it was addressed.
	HTTP *http.Client
	// Roots verify the chain of processor certificates that are not
	// pinned; nil means the system roots.
	Roots *x509.CertPool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Client speaks OpenDSR as the controller: it discovers a processor,
// fetches and checks its certificate, submits requests, reads their
// status and verifies callbacks. Every answer it accepts carries a
// signature that verifies with the processor certificate, which is cached
// for its lifetime and fetched again once when a signature fails to
// verify (the processor may have rotated it). It is safe for concurrent
// use.
type Client struct {
	http  *http.Client
	roots *x509.CertPool
	now   func() time.Time

	mu    sync.Mutex
	certs map[string]*x509.Certificate // by processor: see cacheKey
}

// NewClient returns a Client.
func NewClient(opts ClientOptions) *Client {
	c := &Client{http: opts.HTTP, roots: opts.Roots, now: opts.Now, certs: map[string]*x509.Certificate{}}
	if c.http == nil {
		c.http = &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// CallError is a call to a processor that did not give a usable answer.
// Temporary errors (no answer, 429, 5xx, a certificate that could not be
// fetched) are worth retrying; the others are not: the processor refused
// the request, or its answer could not be trusted (Untrusted).
type CallError struct {
	Op        string // discovery, certificate, submit, status, callback
	Status    int    // the HTTP status, 0 if there was no answer
	Temporary bool
	// Untrusted is set when a signature, domain or certificate did not
	// verify.
	Untrusted bool
	Message   string
}

func (e *CallError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("opendsr %s: %d: %s", e.Op, e.Status, e.Message)
	}
	return fmt.Sprintf("opendsr %s: %s", e.Op, e.Message)
}

// Temporary reports whether err is a CallError worth retrying.
func Temporary(err error) bool {
	var ce *CallError
	return errors.As(err, &ce) && ce.Temporary
}

// maxAnswer bounds what is read of an answer.
const maxAnswer = 1 << 20

// NewSubjectRequestID returns a random lowercase UUID version 4, as the
// specification requires subject_request_id to be.
func NewSubjectRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Discover reads the processor's discovery document, fetches the
// certificate it names, checks that certificate (pinned, or chaining to a
// trusted root; issued for the processor domain; valid now) and the
// signature of the discovery answer, and caches the certificate until it
// expires.
func (c *Client) Discover(ctx context.Context, p Processor) (*Discovery, error) {
	d, _, err := c.discover(ctx, p)
	return d, err
}

func (c *Client) discover(ctx context.Context, p Processor) (*Discovery, *x509.Certificate, error) {
	status, hdr, body, err := c.call(ctx, p, http.MethodGet, "/discovery", nil)
	if err != nil {
		return nil, nil, &CallError{Op: "discovery", Temporary: true, Message: err.Error()}
	}
	if status != http.StatusOK {
		return nil, nil, statusError("discovery", status, body)
	}
	var d Discovery
	if err := json.Unmarshal(body, &d); err != nil || d.ProcessorCertificate == "" {
		return nil, nil, &CallError{Op: "discovery", Status: status, Message: "the discovery document names no processor_certificate"}
	}
	cert, err := c.fetchCertificate(ctx, p, d.ProcessorCertificate)
	if err != nil {
		return nil, nil, err
	}
	if err := c.trust(p, cert); err != nil {
		return nil, nil, err
	}
	if err := checkSigned(p, cert, hdr, body); err != nil {
		return nil, nil, untrusted("discovery", status, err)
	}
	c.mu.Lock()
	c.certs[cacheKey(p)] = cert
	c.mu.Unlock()
	return &d, cert, nil
}

// fetchCertificate GETs the PEM certificate at ref (resolved against the
// base URL), without the credential: the URL may be anywhere, and trust
// in the certificate comes from the pin or the chain, not from where it
// was found.
func (c *Client) fetchCertificate(ctx context.Context, p Processor, ref string) (*x509.Certificate, error) {
	base, err := url.Parse(strings.TrimSuffix(p.BaseURL, "/") + "/")
	if err != nil {
		return nil, &CallError{Op: "certificate", Message: "the base URL is not a URL"}
	}
	u, err := base.Parse(ref)
	if err == nil {
		u, err = urlpolicy.Policy{}.Check("processor_certificate", u.String())
	}
	if err != nil {
		return nil, &CallError{Op: "certificate", Message: "processor_certificate is not an http or https URL"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, &CallError{Op: "certificate", Message: err.Error()}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &CallError{Op: "certificate", Temporary: true, Message: cause(err).Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, &CallError{Op: "certificate", Temporary: true, Message: err.Error()}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &CallError{Op: "certificate", Status: resp.StatusCode, Temporary: temporaryStatus(resp.StatusCode),
			Message: "the processor certificate could not be fetched"}
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, &CallError{Op: "certificate", Status: resp.StatusCode, Untrusted: true, Message: "processor_certificate is not a PEM certificate"}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, &CallError{Op: "certificate", Status: resp.StatusCode, Untrusted: true, Message: "processor_certificate does not parse: " + err.Error()}
	}
	return cert, nil
}

// trust checks that cert may speak for p.
func (c *Client) trust(p Processor, cert *x509.Certificate) error {
	now := c.now()
	fail := func(format string, args ...any) error {
		return &CallError{Op: "certificate", Untrusted: true, Message: fmt.Sprintf(format, args...)}
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return fail("the processor certificate is valid from %s to %s, not now", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if p.Pinned != nil {
		if !cert.Equal(p.Pinned) {
			return fail("the processor certificate named by discovery is not the pinned certificate")
		}
	} else if _, err := cert.Verify(x509.VerifyOptions{Roots: c.roots, CurrentTime: now, DNSName: p.Domain,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fail("the processor certificate is not trusted: %v", err)
	}
	if err := CheckDomain(cert, p.Domain); err != nil {
		return fail("the processor certificate is not issued for %q", p.Domain)
	}
	return nil
}

// checkSigned checks the domain and signature headers of an answer.
func checkSigned(p Processor, cert *x509.Certificate, hdr http.Header, body []byte) error {
	domain, sig := hdr.Get(HeaderProcessorDomain), hdr.Get(HeaderSignature)
	if domain == "" && sig == "" {
		domain, sig = hdr.Get(HeaderProcessorDomainV1), hdr.Get(HeaderSignatureV1)
	}
	if !strings.EqualFold(strings.TrimSuffix(domain, "."), strings.TrimSuffix(p.Domain, ".")) {
		return fmt.Errorf("the answer names processor domain %q, want %q", clip(domain), p.Domain)
	}
	if sig == "" {
		return errors.New("the answer is not signed")
	}
	if err := Verify(cert, body, sig); err != nil {
		return errors.New("the signature does not verify with the processor certificate")
	}
	return nil
}

func untrusted(op string, status int, err error) *CallError {
	return &CallError{Op: op, Status: status, Untrusted: true, Message: err.Error()}
}

// certificate returns the cached certificate of p, discovering it when
// there is none or it expired.
func (c *Client) certificate(ctx context.Context, p Processor) (*x509.Certificate, error) {
	c.mu.Lock()
	cert := c.certs[cacheKey(p)]
	c.mu.Unlock()
	if cert != nil && c.now().Before(cert.NotAfter) {
		return cert, nil
	}
	_, cert, err := c.discover(ctx, p)
	return cert, err
}

// verified checks the signature of an answer or callback with the cached
// certificate and, if that fails, once more with the certificate fetched
// anew.
func (c *Client) verified(ctx context.Context, p Processor, op string, status int, hdr http.Header, body []byte) (*x509.Certificate, error) {
	cert, err := c.certificate(ctx, p)
	if err != nil {
		return nil, err
	}
	if checkSigned(p, cert, hdr, body) == nil {
		return cert, nil
	}
	c.mu.Lock()
	delete(c.certs, cacheKey(p))
	c.mu.Unlock()
	_, cert, err = c.discover(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := checkSigned(p, cert, hdr, body); err != nil {
		return nil, untrusted(op, status, err)
	}
	return cert, nil
}

// cacheKey names a processor in the certificate cache: two recipients
// with the same URL but another domain or pin do not share a certificate.
func cacheKey(p Processor) string {
	pin := ""
	if p.Pinned != nil {
		sum := sha256.Sum256(p.Pinned.Raw)
		pin = hex.EncodeToString(sum[:])
	}
	return strings.TrimSuffix(p.BaseURL, "/") + "\x00" + strings.ToLower(p.Domain) + "\x00" + pin
}

// RequestBody returns the JSON body of a new request. Callers keep the
// exact bytes: resubmitting them after a lost answer is recognised by the
// processor as the same request.
func RequestBody(subjectRequestID, requestType string, submitted time.Time, ids []SubjectIdentity, callbackURLs []string) ([]byte, error) {
	return json.Marshal(Request{
		Regulation: "gdpr", SubjectRequestID: subjectRequestID, SubjectRequestType: requestType,
		SubmittedTime: submitted.UTC().Truncate(time.Second), SubjectIdentities: ids,
		APIVersion: APIVersion, StatusCallbackURLs: callbackURLs,
	})
}

// Submit POSTs a request body (see RequestBody) to the processor and
// returns its verified acknowledgement: the answer's signature, the
// processor_signature over the body, and that the acknowledgement names
// the request sent.
func (c *Client) Submit(ctx context.Context, p Processor, body []byte) (*RequestResponse, error) {
	var sent struct {
		ID string `json:"subject_request_id"`
	}
	if err := json.Unmarshal(body, &sent); err != nil || sent.ID == "" {
		return nil, &CallError{Op: "submit", Message: "the request body has no subject_request_id"}
	}
	status, hdr, rb, err := c.call(ctx, p, http.MethodPost, "/requests", body)
	if err != nil {
		return nil, &CallError{Op: "submit", Temporary: true, Message: err.Error()}
	}
	if temporaryStatus(status) {
		return nil, statusError("submit", status, rb)
	}
	cert, err := c.verified(ctx, p, "submit", status, hdr, rb)
	if err != nil {
		return nil, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return nil, statusError("submit", status, rb)
	}
	var ack RequestResponse
	if err := json.Unmarshal(rb, &ack); err != nil {
		return nil, &CallError{Op: "submit", Status: status, Message: "the acknowledgement is not JSON"}
	}
	if ack.SubjectRequestID != sent.ID {
		return nil, &CallError{Op: "submit", Status: status, Message: fmt.Sprintf("the acknowledgement names request %q, want %q", clip(ack.SubjectRequestID), sent.ID)}
	}
	if ack.EncodedRequest != "" {
		if enc, err := base64.StdEncoding.DecodeString(ack.EncodedRequest); err != nil || !bytes.Equal(enc, body) {
			return nil, &CallError{Op: "submit", Status: status, Untrusted: true, Message: "encoded_request is not the request sent"}
		}
	}
	if Verify(cert, body, ack.ProcessorSignature) != nil {
		return nil, &CallError{Op: "submit", Status: status, Untrusted: true, Message: "processor_signature does not verify over the request sent"}
	}
	return &ack, nil
}

// Status GETs the status of a request at the processor, with a verified
// signature.
func (c *Client) Status(ctx context.Context, p Processor, subjectRequestID string) (*StatusResponse, error) {
	status, hdr, body, err := c.call(ctx, p, http.MethodGet, "/requests/"+url.PathEscape(subjectRequestID), nil)
	if err != nil {
		return nil, &CallError{Op: "status", Temporary: true, Message: err.Error()}
	}
	if temporaryStatus(status) {
		return nil, statusError("status", status, body)
	}
	if _, err := c.verified(ctx, p, "status", status, hdr, body); err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, statusError("status", status, body)
	}
	var s StatusResponse
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, &CallError{Op: "status", Status: status, Message: "the status answer is not JSON"}
	}
	if s.SubjectRequestID != subjectRequestID {
		return nil, &CallError{Op: "status", Status: status, Message: fmt.Sprintf("the status names request %q, want %q", clip(s.SubjectRequestID), subjectRequestID)}
	}
	return &s, nil
}

// VerifyCallback checks the domain and signature headers of a status
// callback the processor POSTed, and decodes it.
func (c *Client) VerifyCallback(ctx context.Context, p Processor, hdr http.Header, body []byte) (*Callback, error) {
	if _, err := c.verified(ctx, p, "callback", 0, hdr, body); err != nil {
		return nil, err
	}
	var cb Callback
	if err := json.Unmarshal(body, &cb); err != nil || cb.SubjectRequestID == "" || cb.RequestStatus == "" {
		return nil, &CallError{Op: "callback", Message: "the callback is not a JSON status callback with subject_request_id and request_status"}
	}
	return &cb, nil
}

// call makes one authenticated call and reads the answer; err is set only
// when there was no answer.
func (c *Client) call(ctx context.Context, p Processor, method, path string, body []byte) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(p.BaseURL, "/")+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, cause(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

func temporaryStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 || status == http.StatusRequestTimeout
}

// statusError reports an answer that is not a success, with the message
// of an error body in the specification's shape when there is one.
func statusError(op string, status int, body []byte) *CallError {
	msg := fmt.Sprintf("the processor answered %d", status)
	var e ErrorResponse
	if json.Unmarshal(body, &e) == nil && e.Error != nil && e.Error.Message != "" {
		msg = clip(e.Error.Message)
	}
	return &CallError{Op: op, Status: status, Temporary: temporaryStatus(status), Message: msg}
}

// cause drops the method and URL net/http puts in front of its errors.
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
