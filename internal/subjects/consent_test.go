package subjects_test

import (
	"context"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/consent"
	"github.com/custos-dev/custos/internal/subjects"
)

func (e *env) ingestWith(t *testing.T, pol *consent.Policy, msgs ...custos.Message) subjects.Result {
	t.Helper()
	res, err := e.pipe.IngestWith(context.Background(), e.tenant, msgs, pol)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res
}

func (e *env) ledger(t *testing.T, s custos.SubjectID) []custos.ConsentRecord {
	t.Helper()
	h, err := consent.New(e.pipe, e.store, e.ring, nil).History(context.Background(), e.tenant, s)
	if err != nil {
		t.Fatalf("History(%s): %v", s, err)
	}
	return h
}

func withConsent(m custos.Message, ctx string) custos.Message {
	m.Context = []byte(ctx)
	return m
}

// TestSDKConsentRecordsChangesOnlyAcrossRestart: a consent manager repeats
// its state on every event; only changes become records, also after a
// restart, when the writer reads the ledger back from the store.
func TestSDKConsentRecordsChangesOnlyAcrossRestart(t *testing.T) {
	e := newEnv(t)
	pol := consent.NewPolicy(&custos.Settings{})
	granted := `{"consent":{"categoryPreferences":{"Marketing":true,"Analytics":true}}}`
	res := e.ingestWith(t, pol, withConsent(msg(custos.Track, "u1", "", 0), granted), withConsent(msg(custos.Track, "u1", "", time.Second), granted))
	if res.Consents != 2 || res.Stored != 2 {
		t.Errorf("first two events: %+v, want 2 stored and 2 consent records", res)
	}
	e.reopen(t)
	res = e.ingestWith(t, pol, withConsent(msg(custos.Track, "u1", "", 2*time.Second), granted))
	if res.Consents != 0 {
		t.Errorf("the same state after a restart added %d records, want 0", res.Consents)
	}
	res = e.ingestWith(t, pol, withConsent(msg(custos.Track, "u1", "", 3*time.Second), `{"consent":{"categoryPreferences":{"Marketing":false,"Analytics":true}}}`))
	if res.Consents != 1 {
		t.Errorf("a withdrawal of marketing added %d records, want 1", res.Consents)
	}
	if h := e.ledger(t, e.find(t, custos.UserID, "u1")); len(h) != 3 {
		t.Errorf("ledger = %+v, want 3 records", h)
	}
}

// TestCollectionGateLinksOnlyForGrantedSubjects: with collection requiring
// consent, a message of a granted subject is stored and its new
// identifiers linked; one of a subject without a grant links nothing.
func TestCollectionGateLinksOnlyForGrantedSubjects(t *testing.T) {
	e := newEnv(t)
	pol := consent.NewPolicy(&custos.Settings{CollectionRequiresConsent: true})
	led := consent.New(e.pipe, e.store, e.ring, nil)
	ctx := context.Background()
	granted, err := led.Record(ctx, e.tenant, custos.Identifier{Type: custos.UserID, Value: "yes"}, custos.ConsentRecord{Purpose: "analytics", Granted: true, Source: custos.SourceAPI})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := led.Record(ctx, e.tenant, custos.Identifier{Type: custos.UserID, Value: "no"}, custos.ConsentRecord{Purpose: "marketing", Granted: true, Source: custos.SourceAPI}); err != nil {
		t.Fatal(err)
	}
	res := e.ingestWith(t, pol, msg(custos.Track, "yes", "anon-yes", 0), msg(custos.Track, "no", "anon-no", 0), msg(custos.Track, "", "anon-new", 0))
	if res.Stored != 1 || res.NoConsent != 2 {
		t.Errorf("result %+v, want 1 stored, 2 dropped for no consent", res)
	}
	if got := e.find(t, custos.AnonymousID, "anon-yes"); got != granted {
		t.Errorf("anon-yes belongs to %s, want the granted subject %s", got, granted)
	}
	for _, anon := range []string{"anon-no", "anon-new"} {
		if _, err := e.rd.Find(ctx, e.tenant, custos.Identifier{Type: custos.AnonymousID, Value: anon}); custos.ErrorCode(err) != custos.NotFound {
			t.Errorf("%s was linked (%v) though its subject has no analytics grant", anon, err)
		}
	}
	// The same policy off: everything is stored.
	if res := e.ingestWith(t, consent.NewPolicy(&custos.Settings{}), msg(custos.Track, "", "anon-new", time.Second)); res.Stored != 1 {
		t.Errorf("without the setting: %+v, want stored", res)
	}
}
