// Package forward forwards data-subject requests to a tenant's OpenDSR
// recipients and follows each to completion.
package forward

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/opendsr"
	"github.com/custos-dev/custos/internal/retry"
)

// Erasure, access and portability requests are forwarded to every OpenDSR
// recipient of the tenant (Art. 19, and Art. 28(3)(e) for processors):
//
//  1. When the request is created, while the subject's identifiers are
//     known in the clear, a Forward is added to the request for each
//     OpenDSR recipient, with a new subject_request_id and the exact
//     OpenDSR request body sealed with a tenant key; both are stored with
//     the request, so they survive a restart.
//  2. Once the request is final here, Run submits each body
//     (retrying transient failures with backoff; the same bytes each
//     time, so the recipient recognises a resubmission), verifies the
//     signed acknowledgement, and drops the sealed body.
//  3. Progress follows the recipient's signed status callbacks
//     (Callback) or, when none arrives, polls of its status, at
//     growing intervals. Only answers and callbacks whose signature
//     verifies with the recipient's certificate count; an unverifiable
//     callback is refused and recorded.
//
// Each change of a forward's status is audited, and for an erasure the
// certificate is issued anew with the recipients' outcomes.

// Options configure forwarding to OpenDSR recipients.
type Options struct {
	// Client talks to the recipients. Without one, nothing is forwarded:
	// each OpenDSR recipient's outcome is failed, saying so.
	Client *opendsr.Client
	// PublicURL returns the base URL at which recipients reach this node
	// (e.g. https://custos.example), for status callbacks; "" means none
	// are asked for and progress is polled.
	PublicURL func() string
	// PollInterval is the wait before the first status poll after a
	// submission and before the first retry of a failed call; each later
	// wait doubles, up to MaxInterval. Defaults 30s and 1h.
	PollInterval, MaxInterval time.Duration
}

// Keys seals and opens records with a tenant's key: forwarded bodies and
// callback tokens.
type Keys interface {
	SealTenant(t custos.TenantID, recordKey, plaintext []byte) ([]byte, error)
	OpenTenant(t custos.TenantID, recordKey, sealed []byte) ([]byte, error)
}

// Deps are what a Forwarder needs from the requests engine that owns
// the requests it forwards.
type Deps struct {
	Options
	Requests   custos.RequestStore
	Recipients custos.RecipientStore // nil: no request is forwarded
	Keys       Keys
	Now        func() time.Time
	// Tenant returns a tenant's region and settings, for the transfer
	// rules.
	Tenant func(custos.TenantID) (region string, s custos.Settings)
	// Tenants lists the tenants whose interrupted forwards Run resumes.
	Tenants func() []custos.TenantID
	// RecipientSecret opens a recipient's sealed secret (its token).
	RecipientSecret func(*custos.Recipient) ([]byte, error)
	// Record stores a request after a change to one of its forwards.
	// statusChanged says the forward's status changed (an erasure's
	// certificate is re-issued with the new outcome); action, if not
	// empty, is audited with details under Actor.
	Record func(ctx context.Context, r *custos.Request, statusChanged bool, action string, details map[string]string) error
}

// Actor names the forwarder in the audit log.
const Actor = "custos:opendsr"

// Forwarder submits forwarded requests and follows them. Create it with
// New; run it with Run.
type Forwarder struct {
	d         Deps
	client    *opendsr.Client // nil: forwarding is off
	publicURL func() string
	poll, max time.Duration

	kick chan struct{}
	mu   sync.Mutex
	due  map[fwdKey]time.Time // when each request with open forwards is next due

	updateMu sync.Mutex // orders changes to requests' forwards
}

type fwdKey struct {
	t  custos.TenantID
	id string
}

// New returns a Forwarder.
func New(d Deps) *Forwarder {
	f := &Forwarder{d: d, client: d.Client, publicURL: d.PublicURL, poll: d.PollInterval, max: d.MaxInterval,
		kick: make(chan struct{}, 1), due: map[fwdKey]time.Time{}}
	if f.publicURL == nil {
		f.publicURL = func() string { return "" }
	}
	if f.poll <= 0 {
		f.poll = 30 * time.Second
	}
	if f.max <= 0 {
		f.max = time.Hour
	}
	f.max = max(f.max, f.poll)
	if f.d.Tenants == nil {
		f.d.Tenants = func() []custos.TenantID { return nil }
	}
	return f
}

func (fw *Forwarder) now() time.Time { return fw.d.Now() }

// schedule makes a request due at (at the latest) at, and wakes the loop.
func (fw *Forwarder) schedule(k fwdKey, at time.Time) {
	fw.mu.Lock()
	if cur, ok := fw.due[k]; !ok || at.Before(cur) {
		fw.due[k] = at
	}
	fw.mu.Unlock()
	select {
	case fw.kick <- struct{}{}:
	default:
	}
}

// backoff is the wait after n failed calls, or before poll n, from
// PollInterval up to MaxInterval.
func (fw *Forwarder) backoff(n int) time.Duration { return retry.Backoff(n, fw.poll, fw.max) }

// openDSRType is the protocol's name for the request types forwarded.
func openDSRType(t custos.RequestType) string {
	switch t {
	case custos.Erasure:
		return opendsr.TypeErasure
	case custos.Access:
		return opendsr.TypeAccess
	case custos.Portability:
		return opendsr.TypePortability
	}
	return ""
}

// outboundIdentities maps a subject's identifiers onto OpenDSR
// identities, most precise first: a user id is the controller customer
// id, an e-mail is sent raw, and a device id under each of the four
// device identity types (Custos does not record which kind of device id
// it is; inbound, all four map onto it). Anonymous ids have no OpenDSR
// type.
func outboundIdentities(ids []custos.Identifier) []opendsr.SubjectIdentity {
	var out []opendsr.SubjectIdentity
	seen := map[opendsr.SubjectIdentity]bool{}
	add := func(typ, v string) {
		si := opendsr.SubjectIdentity{IdentityType: typ, IdentityValue: v, IdentityFormat: opendsr.FormatRaw}
		if !seen[si] {
			seen[si] = true
			out = append(out, si)
		}
	}
	for _, kind := range []custos.IdentifierType{custos.UserID, custos.Email, custos.DeviceID} {
		for _, id := range ids {
			if id.Type != kind || id.Value == "" {
				continue
			}
			switch kind {
			case custos.UserID:
				add(opendsr.IdentityControllerCustomerID, id.Value)
			case custos.Email:
				add(opendsr.IdentityEmail, id.Value)
			case custos.DeviceID:
				for _, typ := range []string{opendsr.IdentityAndroidAdvertisingID, opendsr.IdentityIOSAdvertisingID,
					opendsr.IdentityIOSVendorID, opendsr.IdentityAndroidID} {
					add(typ, id.Value)
				}
			}
		}
	}
	return out
}

// forwardRecord is the record key of a forward's sealed body.
func forwardRecord(requestID, recipientID string) []byte {
	return []byte("opendsr/forward/" + requestID + "/" + recipientID)
}

var callbackTokenRecord = []byte("opendsr/callback-token")

// callbackToken names one forward in a callback URL: the tenant id, then
// the request and recipient ids sealed with the tenant key, so the token
// cannot be guessed or forged, and needs no lookup table.
func (fw *Forwarder) callbackToken(t custos.TenantID, requestID, recipientID string) (string, error) {
	sealed, err := fw.d.Keys.SealTenant(t, callbackTokenRecord, []byte(requestID+"\n"+recipientID))
	if err != nil {
		return "", err
	}
	return t.String() + "." + base64.RawURLEncoding.EncodeToString(sealed), nil
}

func (fw *Forwarder) openCallbackToken(token string) (t custos.TenantID, requestID, recipientID string, ok bool) {
	ts, rest, found := strings.Cut(token, ".")
	if !found || len(token) > 1024 {
		return t, "", "", false
	}
	t, err := custos.ParseTenantID(ts)
	if err != nil {
		return t, "", "", false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return t, "", "", false
	}
	plain, err := fw.d.Keys.OpenTenant(t, callbackTokenRecord, sealed)
	if err != nil {
		return t, "", "", false
	}
	requestID, recipientID, ok = strings.Cut(string(plain), "\n")
	return t, requestID, recipientID, ok
}

// Plan adds a forward to r for each OpenDSR recipient of the
// tenant, with the request body sealed. It is called before r is first
// stored, while ids are known in the clear.
func (fw *Forwarder) Plan(ctx context.Context, r *custos.Request, ids []custos.Identifier) error {
	typ := openDSRType(r.Type)
	if fw.d.Recipients == nil || typ == "" {
		return nil
	}
	list, err := fw.d.Recipients.Recipients(ctx, r.Tenant)
	if err != nil {
		return err
	}
	now := fw.now().UTC()
	identities := outboundIdentities(ids)
	region, settings := fw.d.Tenant(r.Tenant)
	for _, rc := range list {
		if rc.Kind != custos.RecipientOpenDSR {
			continue
		}
		f := custos.Forward{RecipientID: rc.ID, Recipient: rc.Name, SubjectRequestID: opendsr.NewSubjectRequestID(),
			Status: custos.ForwardQueued, UpdatedAt: now, NextAt: now}
		blocked := settings.CheckDestination(region, "recipient "+rc.Name, rc.Region)
		switch {
		case blocked != nil:
			// Outside the region while transfers are forbidden: nothing
			// is sent, and the outcome says why.
			f.Status, f.Reason = custos.ForwardFailed, custos.ErrorMessage(blocked)
		case fw.client == nil:
			f.Status, f.Reason = custos.ForwardFailed, "OpenDSR forwarding is not configured on this node"
		case len(identities) == 0:
			f.Status, f.Reason = custos.ForwardFailed, "the subject has no identifier an OpenDSR recipient can be asked about (user id, e-mail or device id)"
		default:
			var callbacks []string
			if base := strings.TrimSuffix(fw.publicURL(), "/"); base != "" {
				tok, err := fw.callbackToken(r.Tenant, r.ID, rc.ID)
				if err != nil {
					return err
				}
				callbacks = []string{base + "/opendsr/v2/callbacks/" + tok}
			}
			body, err := opendsr.RequestBody(f.SubjectRequestID, typ, now, identities, callbacks)
			if err != nil {
				return err
			}
			sealed, err := fw.d.Keys.SealTenant(r.Tenant, forwardRecord(r.ID, rc.ID), body)
			if err != nil {
				return fmt.Errorf("seal the request to recipient %s: %w", rc.ID, err)
			}
			if r.ForwardBodies == nil {
				r.ForwardBodies = map[string][]byte{}
			}
			r.ForwardBodies[rc.ID] = sealed
		}
		r.Forwards = append(r.Forwards, f)
	}
	return nil
}

// Kick wakes the forwarder for a request stored with open forwards.
func (fw *Forwarder) Kick(r *custos.Request) {
	if fw.client == nil || r == nil {
		return
	}
	for _, f := range r.Forwards {
		if !f.Final() {
			fw.schedule(fwdKey{r.Tenant, r.ID}, fw.now())
			return
		}
	}
}

// Outcomes are the outcomes of a request's forwards, for the request's
// view and the erasure certificate.
func Outcomes(r *custos.Request) []certificate.Outcome {
	var out []certificate.Outcome
	for _, f := range r.Forwards {
		detail := "opendsr subject_request_id " + f.SubjectRequestID
		if f.Reason != "" {
			detail += ": " + f.Reason
		}
		out = append(out, certificate.Outcome{Recipient: f.Recipient, Status: f.Status, At: f.UpdatedAt, Detail: detail})
	}
	return out
}

// Run submits and follows forwarded requests until ctx ends. It first
// loads the open forwards of Deps.Tenants (those a restart interrupted),
// then works on each when due and whenever a request with forwards is
// created (Kick). Without a client it returns at once.
func (fw *Forwarder) Run(ctx context.Context) error {
	if fw.client == nil {
		return nil
	}
	if err := fw.load(ctx); err != nil {
		return err
	}
	// Requests with forwards may be stored by other nodes sharing the
	// store: they are looked for again now and then.
	reload := time.NewTicker(max(fw.poll, time.Second))
	defer reload.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-fw.kick:
		case <-timer.C:
		case <-reload.C:
			// A failure to look is retried at the next tick; the
			// forwards already known go on meanwhile.
			_ = fw.load(ctx)
		}
		wait := fw.forwardDue(ctx)
		if ctx.Err() != nil {
			return nil
		}
		timer.Reset(wait)
	}
}

// load schedules the open forwards of Deps.Tenants' requests.
func (fw *Forwarder) load(ctx context.Context) error {
	for _, t := range fw.d.Tenants() {
		err := fw.d.Requests.Requests(ctx, t, func(r *custos.Request) bool {
			if next, ok := nextDue(r); ok {
				fw.schedule(fwdKey{t, r.ID}, next)
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("load forwarded requests: %w", err)
		}
	}
	return nil
}

// nextDue is when the earliest open forward of r is due.
func nextDue(r *custos.Request) (time.Time, bool) {
	var next time.Time
	ok := false
	for _, f := range r.Forwards {
		if !f.Final() && (!ok || f.NextAt.Before(next)) {
			next, ok = f.NextAt, true
		}
	}
	return next, ok
}

// forwardDue works on every request due now and returns how long to wait
// for the next.
func (fw *Forwarder) forwardDue(ctx context.Context) time.Duration {
	now := fw.now()
	var keys []fwdKey
	fw.mu.Lock()
	for k, at := range fw.due {
		if !at.After(now) {
			keys = append(keys, k)
			delete(fw.due, k)
		}
	}
	fw.mu.Unlock()
	for _, k := range keys {
		if ctx.Err() != nil {
			fw.schedule(k, now) // not done: first thing after a restart
			continue
		}
		if next, ok := fw.forwardRequest(ctx, k); ok {
			fw.schedule(k, next)
		}
	}
	wait := time.Minute
	fw.mu.Lock()
	for _, at := range fw.due {
		wait = min(wait, at.Sub(fw.now()))
	}
	fw.mu.Unlock()
	return max(wait, 10*time.Millisecond)
}

// forwardRequest works on the due forwards of one request and returns
// when it is next due (ok false: nothing is left to do).
func (fw *Forwarder) forwardRequest(ctx context.Context, k fwdKey) (time.Time, bool) {
	r, err := fw.d.Requests.Request(ctx, k.t, k.id)
	if custos.ErrorCode(err) == custos.NotFound {
		return time.Time{}, false
	}
	if err != nil {
		return fw.now().Add(fw.poll), true
	}
	if !r.Status.Final() {
		// Forwarded once it is done here (an erasure resumes after a crash).
		return fw.now().Add(min(fw.poll, time.Second)), true
	}
	now := fw.now()
	for _, f := range r.Forwards {
		if !f.Final() && !f.NextAt.After(now) {
			fw.advance(ctx, r, f)
		}
	}
	if r, err = fw.d.Requests.Request(ctx, k.t, k.id); err != nil {
		return fw.now().Add(fw.poll), true
	}
	return nextDue(r)
}

// advance makes one call for one forward: its submission, or a status
// poll. f is a copy; the outcome is applied to the stored request.
func (fw *Forwarder) advance(ctx context.Context, r *custos.Request, f custos.Forward) {
	k := fwdKey{r.Tenant, r.ID}
	fail := func(reason string) {
		fw.updateForward(ctx, k, f.RecipientID, func(_ *custos.Request, f *custos.Forward) (string, error) {
			if !f.Final() {
				f.Status, f.Reason = custos.ForwardFailed, reason
			}
			return "", nil
		})
	}
	if fw.now().After(r.DueAt) {
		fail("the recipient did not complete the request by its due date; last error: " + f.LastError)
		return
	}
	_, p, err := fw.recipientProcessor(ctx, r.Tenant, f.RecipientID)
	if err != nil {
		fail(custos.ErrorMessage(err))
		return
	}
	switch f.Status {
	case custos.ForwardQueued:
		sealed := r.ForwardBodies[f.RecipientID]
		body, err := fw.d.Keys.OpenTenant(r.Tenant, forwardRecord(r.ID, f.RecipientID), sealed)
		if err != nil {
			fail("the sealed request to the recipient cannot be read")
			return
		}
		_, err = fw.client.Submit(ctx, p, body)
		if ctx.Err() != nil {
			return // shutting down: the submission is due again at restart
		}
		fw.updateForward(ctx, k, f.RecipientID, func(r *custos.Request, f *custos.Forward) (string, error) {
			now := fw.now().UTC()
			action := ""
			switch {
			case err == nil:
				if f.SubmittedAt.IsZero() {
					f.SubmittedAt = now
				}
				if f.Status == custos.ForwardQueued {
					f.Status = custos.ForwardSubmitted
				} else {
					// The recipient called back before its acknowledgement
					// was read: the submission is still recorded.
					action = "opendsr.forward.submitted"
				}
				f.Attempts, f.LastError, f.NextAt = 0, "", now.Add(fw.backoff(1))
				delete(r.ForwardBodies, f.RecipientID)
			case opendsr.Temporary(err):
				f.Attempts++
				f.LastError, f.NextAt = err.Error(), now.Add(fw.backoff(f.Attempts))
			default:
				if !f.Final() {
					f.Status, f.Reason = custos.ForwardFailed, err.Error()
				}
				delete(r.ForwardBodies, f.RecipientID)
			}
			return action, nil
		})
	default:
		st, err := fw.client.Status(ctx, p, f.SubjectRequestID)
		if ctx.Err() != nil {
			return
		}
		fw.updateForward(ctx, k, f.RecipientID, func(_ *custos.Request, f *custos.Forward) (string, error) {
			now := fw.now().UTC()
			switch {
			case err == nil:
				f.Polls++
				f.Attempts, f.LastError = 0, ""
				applyStatus(f, st.RequestStatus, st.ResultsURL)
				f.NextAt = now.Add(fw.backoff(f.Polls + 1))
			case opendsr.Temporary(err):
				f.Attempts++
				f.LastError, f.NextAt = err.Error(), now.Add(fw.backoff(f.Attempts))
			default:
				if !f.Final() {
					f.Status, f.Reason = custos.ForwardFailed, err.Error()
				}
			}
			return "", nil
		})
	}
}

// forwardRank orders forward statuses: progress never goes back.
var forwardRank = map[string]int{custos.ForwardQueued: 0, custos.ForwardSubmitted: 1, custos.ForwardInProgress: 2,
	custos.ForwardCompleted: 3, custos.ForwardFailed: 3}

// applyStatus moves a forward on to the status a recipient reported.
func applyStatus(f *custos.Forward, status, resultsURL string) {
	if f.Final() {
		return
	}
	next, reason := "", ""
	switch status {
	case opendsr.StatusPending:
		next = custos.ForwardSubmitted
	case opendsr.StatusInProgress:
		next = custos.ForwardInProgress
	case opendsr.StatusCompleted:
		next = custos.ForwardCompleted
	case opendsr.StatusCancelled:
		next, reason = custos.ForwardFailed, "the recipient cancelled the request"
	default:
		return
	}
	if forwardRank[next] > forwardRank[f.Status] {
		f.Status, f.Reason = next, reason
	}
	if resultsURL != "" {
		f.ResultsURL = resultsURL
	}
}

// updateForward applies change to one forward of a stored request, under
// the lock that orders every change to forwards. A change of status is
// stamped, audited and, for an erasure, re-issues the certificate with
// the new outcome; audit, if change returns an action, is audited too;
// other changes (retry schedules) are only stored.
func (fw *Forwarder) updateForward(ctx context.Context, k fwdKey, recipientID string, change func(*custos.Request, *custos.Forward) (audit string, err error)) error {
	fw.updateMu.Lock()
	defer fw.updateMu.Unlock()
	ctx = context.WithoutCancel(ctx) // an outcome learnt is recorded, even at shutdown
	r, err := fw.d.Requests.Request(ctx, k.t, k.id)
	if err != nil {
		return err
	}
	i := -1
	for j := range r.Forwards {
		if r.Forwards[j].RecipientID == recipientID {
			i = j
		}
	}
	if i < 0 {
		return custos.Errorf(custos.NotFound, "request %s was not forwarded to recipient %s", k.id, recipientID)
	}
	f := &r.Forwards[i]
	before := f.Status
	action, err := change(r, f)
	if err != nil {
		return err
	}
	if f.Status != before {
		now := fw.now().UTC()
		f.UpdatedAt = now
		if f.Status == custos.ForwardCompleted {
			f.CompletedAt = now
		}
		if f.Status != custos.ForwardQueued {
			delete(r.ForwardBodies, recipientID) // acknowledged or given up: not sent again
		}
		if action == "" {
			action = "opendsr.forward." + f.Status
		}
	}
	details := map[string]string{"recipient": recipientID, "forward": f.Status, "subject_request_id": f.SubjectRequestID}
	return fw.d.Record(ctx, r, f.Status != before, action, details)
}

// recipientProcessor finds a recipient and what the client needs to talk
// to it.
func (fw *Forwarder) recipientProcessor(ctx context.Context, t custos.TenantID, id string) (*custos.Recipient, opendsr.Processor, error) {
	list, err := fw.d.Recipients.Recipients(ctx, t)
	if err != nil {
		return nil, opendsr.Processor{}, err
	}
	for _, rc := range list {
		if rc.ID != id {
			continue
		}
		secret, err := fw.d.RecipientSecret(rc)
		if err != nil {
			return nil, opendsr.Processor{}, err
		}
		p := opendsr.Processor{BaseURL: rc.URL, Domain: rc.Domain, Token: string(secret)}
		if len(rc.CertificatePEM) > 0 {
			if p.Pinned, err = opendsr.ParseCertificatePEM(rc.CertificatePEM); err != nil {
				return nil, opendsr.Processor{}, custos.Errorf(custos.Invalid, "the pinned certificate of recipient %s: %v", rc.ID, err)
			}
		}
		return rc, p, nil
	}
	return nil, opendsr.Processor{}, custos.Errorf(custos.NotFound, "recipient %s was removed", id)
}

// Callback takes a status callback POSTed by an OpenDSR recipient
// to the callback URL named by token. The callback must carry the
// recipient's processor domain and a signature that verifies with its
// certificate: otherwise it is refused (Unauthorized) and the refusal is
// recorded in the forward and the audit log.
func (fw *Forwarder) Callback(ctx context.Context, token string, hdr http.Header, body []byte) error {
	notFound := custos.Errorf(custos.NotFound, "no OpenDSR callback is expected at this address")
	if fw.client == nil {
		return notFound
	}
	t, requestID, recipientID, ok := fw.openCallbackToken(token)
	if !ok {
		return notFound
	}
	k := fwdKey{t, requestID}
	_, p, err := fw.recipientProcessor(ctx, t, recipientID)
	if custos.ErrorCode(err) == custos.NotFound {
		return notFound
	} else if err != nil {
		return err
	}
	cb, err := fw.client.VerifyCallback(ctx, p, hdr, body)
	var ce *opendsr.CallError
	switch {
	case err == nil:
	case opendsr.Temporary(err):
		return custos.Errorf(custos.Unavailable, "the recipient's certificate could not be fetched to verify the callback; retry")
	case errors.As(err, &ce) && ce.Untrusted:
		reason := ce.Message
		if uerr := fw.updateForward(ctx, k, recipientID, func(_ *custos.Request, f *custos.Forward) (string, error) {
			f.RejectedCallbacks++
			f.LastRejection = reason
			return "opendsr.callback_rejected", nil
		}); uerr != nil {
			if custos.ErrorCode(uerr) == custos.NotFound {
				return notFound
			}
			return uerr
		}
		return custos.Errorf(custos.Unauthorized, "the callback is refused: %s", reason)
	default:
		return custos.Errorf(custos.Invalid, "%s", err.Error())
	}
	err = fw.updateForward(ctx, k, recipientID, func(_ *custos.Request, f *custos.Forward) (string, error) {
		if cb.SubjectRequestID != f.SubjectRequestID {
			return "", custos.Errorf(custos.Invalid, "subject_request_id %q is not the request this callback address is for", cb.SubjectRequestID)
		}
		f.Callbacks++
		applyStatus(f, cb.RequestStatus, cb.ResultsURL)
		return "", nil
	})
	if custos.ErrorCode(err) == custos.NotFound {
		return notFound
	}
	return err
}
