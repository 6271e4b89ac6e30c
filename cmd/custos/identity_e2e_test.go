package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAliasMergesSubjects makes two subjects in separate requests, one
// anonymous and one identified, and merges them with an alias: every
// identifier then finds the identified subject, which holds both
// subjects' events and traits, and the merged-away subject is gone. Two
// users sharing an e-mail address are not fused.
func TestAliasMergesSubjects(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "alias-merge")
	p := newPerson("merge")
	run := randomHex(4)
	now := func() string { return time.Now().UTC().Format(time.RFC3339Nano) }

	anon := batchBody(t, "", []map[string]any{
		{"type": "track", "messageId": "m1-" + run, "anonymousId": p.anonID2, "event": "Viewed", "properties": map[string]any{"sku": "s-1"}, "timestamp": now()},
		{"type": "identify", "messageId": "m2-" + run, "anonymousId": p.anonID2, "traits": map[string]any{"color": "blue"}, "timestamp": now()},
	})
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", anon); res.Accepted != 2 {
		t.Fatalf("anonymous batch: %+v", res)
	}
	known := batchBody(t, "", []map[string]any{
		{"type": "identify", "messageId": "m3-" + run, "userId": p.userID, "anonymousId": p.anonID, "traits": map[string]any{"email": p.email, "name": p.name}, "timestamp": now()},
	})
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", known); res.Accepted != 1 {
		t.Fatalf("identified batch: %+v", res)
	}
	s2 := srv.findProfile(t, tn.SecretKey, "anonymous_id", p.anonID2).SubjectID
	s1 := srv.findProfile(t, tn.SecretKey, "user_id", p.userID).SubjectID
	if s1 == s2 {
		t.Fatalf("before the alias, the anonymous and the identified visitor share subject %s", s1)
	}

	alias := mustJSON(t, map[string]any{"messageId": "m4-" + run, "previousId": p.anonID2, "userId": p.userID, "timestamp": now()})
	if res := srv.ingest(t, tn.WriteKey, "/v1/alias", alias); res.Accepted != 1 {
		t.Fatalf("alias: %+v", res)
	}
	for _, lk := range []struct{ typ, value string }{
		{"user_id", p.userID}, {"anonymous_id", p.anonID}, {"anonymous_id", p.anonID2}, {"email", p.email},
	} {
		if got := srv.findProfile(t, tn.SecretKey, lk.typ, lk.value).SubjectID; got != s1 {
			t.Errorf("after the alias, %s %q finds %s, want %s", lk.typ, lk.value, got, s1)
		}
	}
	prof := srv.findProfile(t, tn.SecretKey, "user_id", p.userID)
	for k, want := range map[string]string{"color": `"blue"`, "name": string(mustJSON(t, p.name)), "email": string(mustJSON(t, p.email))} {
		if got := string(prof.Traits[k]); got != want {
			t.Errorf("merged trait %q = %s, want %s", k, got, want)
		}
	}
	if !slices.Contains(prof.Identifiers["anonymous_id"], p.anonID2) || !slices.Contains(prof.Identifiers["anonymous_id"], p.anonID) {
		t.Errorf("merged anonymous ids = %q, want both %q and %q", prof.Identifiers["anonymous_id"], p.anonID, p.anonID2)
	}
	events := byMessageID(t, srv.events(t, tn.SecretKey, s1, 0))
	for _, id := range []string{"m1-", "m2-", "m3-", "m4-"} {
		if _, ok := events[id+run]; !ok {
			t.Errorf("after the merge, event %s is not the identified subject's", id+run)
		}
	}
	if e := events["m1-"+run]; e.Event != "Viewed" || e.AnonymousID != p.anonID2 || !jsonEqual(e.Properties, []byte(`{"sku":"s-1"}`)) {
		t.Errorf("merged event m1 = %+v, want the anonymous track as sent", e)
	}
	if len(events) != 4 {
		t.Errorf("merged subject has %d events, want 4", len(events))
	}
	for _, path := range []string{"/api/v1/profiles/" + s2, "/api/v1/profiles/" + s2 + "/events"} {
		if r := srv.do(t, "GET", path, nil, "Authorization", "Bearer "+tn.SecretKey); r.status != http.StatusNotFound {
			t.Errorf("GET %s of the merged-away subject: status %d, body %s, want 404", path, r.status, r.body)
		}
	}
	// A retry of a message stored before the merge is still a duplicate.
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", anon); res.Duplicates != 2 || res.Accepted != 0 {
		t.Errorf("retry of the anonymous batch after the merge: %+v, want 2 duplicates", res)
	}

	// Another user with the same e-mail is not fused with the first.
	other := "merge-other-" + randomHex(6)
	shared := batchBody(t, "", []map[string]any{
		{"type": "identify", "messageId": "m5-" + run, "userId": other, "traits": map[string]any{"email": p.email}},
	})
	if res := srv.ingest(t, tn.WriteKey, "/v1/batch", shared); res.Accepted != 1 {
		t.Fatalf("identify of a second user with the same e-mail: %+v", res)
	}
	if got := srv.findProfile(t, tn.SecretKey, "user_id", other).SubjectID; got == s1 {
		t.Errorf("a second user sharing the e-mail was merged into %s", s1)
	}
	after := srv.findProfile(t, tn.SecretKey, "user_id", p.userID)
	if slices.Contains(after.Identifiers["user_id"], other) {
		t.Errorf("first user's profile gained the second user's id: %q", after.Identifiers["user_id"])
	}
	if n := len(srv.events(t, tn.SecretKey, s1, 0)); n != 4 {
		t.Errorf("first user has %d events after the second user's identify, want 4", n)
	}
}

// TestEventTimestampOutOfRange sends client timestamps far outside the
// years a Unix time in nanoseconds can hold (1678–2262), as clients with a
// broken clock or a zero time.Time do. Whatever the server makes of them
// (refuse, clamp or keep), the events API must list a subject's events in
// timestamp order, and first_seen and last_seen must be the earliest and
// latest event timestamps.
//
// Event keys, cursors and the sealing's associated data encode
// t.UnixNano() (internal/pebble/keys.go sortableTime, ingest.eventRecordKey,
// ingest.FormatCursor), which wraps around outside that range: a year-2400
// event was keyed as if it happened in 1815, listed first, and first_seen
// reported a time no event had. internal/segment now refuses timestamps
// outside 1700–2200, but the skew correction (timestamp + receivedAt −
// sentAt) can still carry an in-range timestamp out of range when sentAt is
// far off, which the last case checks.
func TestEventTimestampOutOfRange(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "timestamps")
	for _, c := range []struct {
		ts     string
		sentAt string // with sentAt the server corrects for clock skew; without, it takes the timestamp as is
	}{
		{"2400-01-01T00:00:00Z", ""},
		{"0001-01-01T00:00:00Z", ""},
		{"9999-12-31T23:59:59Z", ""},
		{"0001-01-01T00:00:00Z", "now"},
		{"2400-01-01T00:00:00Z", "now"},
		{"2199-01-01T00:00:00Z", "1800-01-01T00:00:00Z"},
	} {
		t.Run(fmt.Sprintf("%s sentAt=%s", c.ts, c.sentAt), func(t *testing.T) {
			user := "ts-" + randomHex(6)
			msgs := trackMessages(user, "ts-"+randomHex(4), 2)
			msgs[0]["timestamp"] = "2024-05-01T12:00:00Z"
			msgs[1]["timestamp"] = c.ts
			b := map[string]any{"batch": msgs}
			switch c.sentAt {
			case "":
			case "now":
				b["sentAt"] = time.Now().UTC().Format(time.RFC3339Nano)
			default:
				b["sentAt"] = c.sentAt
			}
			body := mustJSON(t, b)
			res := srv.ingest(t, tn.WriteKey, "/v1/batch", body)
			if res.Accepted+len(res.Rejected) != 2 {
				t.Fatalf("answer %+v, want each message accepted or rejected", res)
			}
			for _, r := range res.Rejected {
				if r.Reason != "invalid_timestamp" {
					t.Errorf("rejection %+v, want reason invalid_timestamp", r)
				}
			}
			if res.Accepted == 0 {
				// A sentAt centuries off pushes every corrected time out of
				// range: nothing is stored under wrapped-around times.
				return
			}
			prof := srv.findProfile(t, tn.SecretKey, "user_id", user)
			events := srv.events(t, tn.SecretKey, prof.SubjectID, 1)
			if len(events) != res.Accepted {
				t.Fatalf("%d events listed, %d accepted", len(events), res.Accepted)
			}
			for i := 1; i < len(events); i++ {
				if events[i].Timestamp.Before(events[i-1].Timestamp) {
					t.Errorf("events out of order: %s (%v) listed before %s (%v)",
						events[i-1].MessageID, events[i-1].Timestamp, events[i].MessageID, events[i].Timestamp)
				}
			}
			first, last := events[0].Timestamp, events[0].Timestamp
			for _, e := range events {
				if e.Timestamp.Before(first) {
					first = e.Timestamp
				}
				if e.Timestamp.After(last) {
					last = e.Timestamp
				}
			}
			if !prof.FirstSeen.Equal(first) || !prof.LastSeen.Equal(last) {
				t.Errorf("first_seen %v, last_seen %v; want %v and %v, the events' earliest and latest timestamps", prof.FirstSeen, prof.LastSeen, first, last)
			}
		})
	}
}

// TestEmailHashIndexFollowsMerges checks that the index of e-mail
// addresses by their SHA-256 finds the person, follows a merge of two
// subjects to the survivor, and never lists the hash as an identifier.
func TestEmailHashIndexFollowsMerges(t *testing.T) {
	t.Parallel()
	srv := startServer(t, newServerConfig(t))
	tn := srv.createTenant(t, "email-hash")
	p := newPerson("hash")
	sum := sha256.Sum256([]byte(strings.ToLower(p.email)))
	hashed := hex.EncodeToString(sum[:])

	// An anonymous visitor leaves an e-mail address; a user id arrives on
	// its own; then one message names both, and the two subjects merge.
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", []map[string]any{
		{"type": "identify", "messageId": "h1-" + p.anonID, "anonymousId": p.anonID, "traits": map[string]any{"email": "  " + strings.ToUpper(p.email)}},
		{"type": "track", "messageId": "h2-" + p.userID, "userId": p.userID, "event": "Signed Up"},
	}))
	before := srv.findProfile(t, tn.SecretKey, "email_sha256", hashed)
	if anon := srv.findProfile(t, tn.SecretKey, "anonymous_id", p.anonID); anon.SubjectID != before.SubjectID {
		t.Fatalf("email_sha256 finds %s, the anonymous visitor is %s", before.SubjectID, anon.SubjectID)
	}
	srv.ingest(t, tn.WriteKey, "/v1/batch", batchBody(t, "", []map[string]any{
		{"type": "identify", "messageId": "h3-" + p.userID, "userId": p.userID, "anonymousId": p.anonID},
	}))
	user := srv.findProfile(t, tn.SecretKey, "user_id", p.userID)
	if anon := srv.findProfile(t, tn.SecretKey, "anonymous_id", p.anonID); anon.SubjectID != user.SubjectID {
		t.Fatalf("after the merge the anonymous id is %s, the user %s", anon.SubjectID, user.SubjectID)
	}
	if got := srv.findProfile(t, tn.SecretKey, "email_sha256", hashed); got.SubjectID != user.SubjectID {
		t.Errorf("email_sha256 finds %s after the merge, want the survivor %s", got.SubjectID, user.SubjectID)
	}
	if _, listed := user.Identifiers["email_sha256"]; listed {
		t.Errorf("profile lists the derived hash as an identifier: %v", user.Identifiers)
	}
}
