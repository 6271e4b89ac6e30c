package rights_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/audit"
	"github.com/custos-dev/custos/internal/certificate"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/rights"
)

func (e *env) erase(t *testing.T, idType custos.IdentifierType, v string, suppress bool) *custos.Request {
	t.Helper()
	r, err := e.eng.Create(context.Background(), e.tenant, rights.Input{Type: custos.Erasure, Identity: custos.Identifier{Type: idType, Value: v}, Suppress: suppress, Actor: "test"})
	if err != nil {
		t.Fatalf("erase %s %q: %v", idType, v, err)
	}
	return r
}

// checkErased asserts the request completed, nothing of the subject is
// found by any identifier, and the certificate verifies offline.
func (e *env) checkErased(t *testing.T, r *custos.Request, ids map[custos.IdentifierType]string, events int) certificate.Certificate {
	t.Helper()
	ctx := context.Background()
	if r.Status != custos.Completed || r.Erasure == nil || !r.Erasure.Verified {
		t.Fatalf("erasure = %+v, want completed and verified", r)
	}
	for typ, v := range ids {
		if _, err := e.rd.Find(ctx, e.tenant, custos.Identifier{Type: typ, Value: v}); custos.ErrorCode(err) != custos.NotFound {
			t.Errorf("after erasure, find %s %q: err = %v, want NotFound", typ, v, err)
		}
	}
	if _, err := e.rd.Profile(ctx, e.tenant, r.Subject); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("after erasure, profile: err = %v, want NotFound", err)
	}
	pem := audit.PublicKeyPEM(e.signing.Public().(ed25519.PublicKey))
	c, err := certificate.VerifyFile(r.Erasure.Certificate, pem)
	if err != nil {
		t.Fatalf("certificate does not verify: %v\n%s", err, r.Erasure.Certificate)
	}
	if c.RequestID != r.ID || c.TenantID != e.tenant.String() || !c.Verified || c.RecordsDeleted["events"] != events || c.Region != "eu" {
		t.Errorf("certificate = %+v, want request %s, %d events deleted, verified", c, r.ID, events)
	}
	// The embedded store purges in passes: the certificate names the pass,
	// due within the store's purge interval of the erasure.
	if due, limit := c.PurgeDueAt, c.DeletedAt.Add(pebble.DefaultPurgeInterval); c.Version != 2 || !c.PurgedAt.IsZero() || due.IsZero() || due.After(limit) {
		t.Errorf("certificate version %d, purged_at %v, purge_due_at %v; want version 2, no purged_at, purge due by %v", c.Version, c.PurgedAt, due, limit)
	}
	if !r.Erasure.PurgeDueAt.Equal(c.PurgeDueAt) {
		t.Errorf("request's purge_due_at %v, certificate's %v; want the same", r.Erasure.PurgeDueAt, c.PurgeDueAt)
	}
	js, _ := json.Marshal(c)
	for _, v := range ids {
		if strings.Contains(string(js), v) {
			t.Errorf("the certificate names identifier %q", v)
		}
	}
	return c
}

func TestErasureOfASubjectKnownByAnonymousIDOnly(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, track("", "anon-only"), track("", "anon-only"), track("", "anon-only"))
	r := e.erase(t, custos.AnonymousID, "anon-only", false)
	c := e.checkErased(t, r, map[custos.IdentifierType]string{custos.AnonymousID: "anon-only"}, 3)
	if c.IdentifiersErased["anonymous_id"] != 1 {
		t.Errorf("identifiers_erased = %v, want anonymous_id 1", c.IdentifiersErased)
	}
}

func TestErasureCoversIdentifiersMergedFromTwoSubjects(t *testing.T) {
	e := newEnv(t)
	e.ingest(t, track("", "dev-a"))
	e.ingest(t, track("u-merged", "dev-b"))
	e.ingest(t, track("u-merged", "dev-a")) // merges dev-a's subject in
	r := e.erase(t, custos.UserID, "u-merged", false)
	e.checkErased(t, r, map[custos.IdentifierType]string{custos.UserID: "u-merged", custos.AnonymousID: "dev-a"}, 3)
	if _, err := e.rd.Find(context.Background(), e.tenant, custos.Identifier{Type: custos.AnonymousID, Value: "dev-b"}); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("the other merged device id still finds a subject: %v", err)
	}
	if got := r.Erasure.IdentifiersErased; got["user_id"] != 1 || got["anonymous_id"] != 2 {
		t.Errorf("identifiers_erased = %v, want 1 user id and 2 anonymous ids", got)
	}
}

func TestLateEventsAfterErasure(t *testing.T) {
	e := newEnv(t)
	old := track("u-late", "")
	e.ingest(t, old)
	e.erase(t, custos.UserID, "u-late", false)
	// A client retrying an event dated before the erasure: dropped, counted.
	retry := track("u-late", "")
	retry.Timestamp = old.Timestamp
	if res := e.ingest(t, retry); res.Erased != 1 || res.Stored != 0 {
		t.Errorf("late event dated before the erasure: %+v, want dropped as erased", res)
	}
	// An event dated after it starts a new subject.
	fresh := track("u-late", "")
	fresh.Timestamp = e.clock.now().Add(time.Minute)
	if res := e.ingest(t, fresh); res.Stored != 1 {
		t.Errorf("event dated after the erasure: %+v, want stored as a new subject", res)
	}
	// With suppress, nothing of those identifiers is stored any more.
	e.ingest(t, track("u-sup", ""))
	e.erase(t, custos.UserID, "u-sup", true)
	later := track("u-sup", "")
	later.Timestamp = e.clock.now().Add(time.Hour)
	if res := e.ingest(t, later); res.Erased != 1 {
		t.Errorf("event after an erasure with suppress: %+v, want dropped", res)
	}
}

func TestErasureResumesAfterACrashAtEveryStep(t *testing.T) {
	for _, step := range rights.ErasureSteps {
		t.Run(step, func(t *testing.T) {
			e := newEnv(t)
			e.ingest(t, track("u-crash", "a-crash"), track("u-crash", ""))
			rights.CrashAfter(e.eng, step)
			_, err := e.eng.Create(context.Background(), e.tenant, rights.Input{Type: custos.Erasure, Identity: custos.Identifier{Type: custos.UserID, Value: "u-crash"}, Actor: "test"})
			if err == nil && step != rights.ErasureSteps[len(rights.ErasureSteps)-1] {
				t.Fatalf("crash after %s: Create returned no error", step)
			}
			// Restart on the same directories and resume.
			e.close(t)
			e.open(t)
			n, err := e.eng.Resume(context.Background(), []custos.TenantID{e.tenant})
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			list, _ := e.eng.List(context.Background(), e.tenant, rights.Filter{Type: custos.Erasure})
			if len(list) != 1 {
				t.Fatalf("erasure requests after restart = %d, want 1", len(list))
			}
			if step != rights.ErasureSteps[len(rights.ErasureSteps)-1] && n != 1 {
				t.Errorf("resumed %d erasures, want 1", n)
			}
			e.checkErased(t, list[0], map[custos.IdentifierType]string{custos.UserID: "u-crash", custos.AnonymousID: "a-crash"}, 2)
		})
	}
}

func TestCertificateEndpointRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.request(t, custos.Suppress, custos.UserID, "x")
	if _, err := e.eng.Certificate(ctx, e.tenant, r.ID); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("certificate of a suppress request: err = %v, want NotFound", err)
	}
	er := e.erase(t, custos.UserID, "nobody-here", false)
	c, err := e.eng.Certificate(ctx, e.tenant, er.ID)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certificate.VerifyFile(c, audit.PublicKeyPEM(e.signing.Public().(ed25519.PublicKey)))
	if err != nil || cert.Subject != "none-held" || cert.RecordsDeleted["events"] != 0 {
		t.Errorf("certificate for an unknown identifier = %+v (%v), want a verified one saying nothing was held", cert, err)
	}
}
