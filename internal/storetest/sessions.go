package storetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos-dev/custos"
)

func sessionHash() [32]byte {
	var h [32]byte
	rand.Read(h[:])
	return h
}

// newSession is a console session of tenant ten created at at(created),
// live for ttl seconds.
func newSession(ten custos.TenantID, kind, holder string, created, ttl int) *custos.Session {
	return &custos.Session{Tenant: ten, Kind: kind, Hash: sessionHash(), Holder: holder,
		User: "Ada Lovelace", How: "user", IP: "192.0.2.7", Agent: "Mozilla/5.0 (X11)",
		Created: at(created), Expires: at(created + ttl), Sealed: []byte("sealed " + holder)}
}

func createSession(t *testing.T, st custos.Store, s *custos.Session) {
	t.Helper()
	if err := st.CreateSession(t.Context(), s); err != nil {
		t.Fatalf("CreateSession(%s %s) = %v, want nil", s.Kind, s.Holder, err)
	}
}

// sameSession reports whether two sessions are equal, times by Equal.
func sameSession(a, b *custos.Session) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Tenant == b.Tenant && a.Kind == b.Kind && a.Hash == b.Hash && a.Holder == b.Holder &&
		a.User == b.User && a.How == b.How && a.IP == b.IP && a.Agent == b.Agent &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires) && bytes.Equal(a.Sealed, b.Sealed)
}

// sessionCode returns the code of Session's error (nil: found).
func sessionCode(t *testing.T, st custos.Store, s *custos.Session, now time.Time) custos.Code {
	t.Helper()
	got, err := st.Session(t.Context(), s.Tenant, s.Kind, s.Hash, now)
	if err != nil {
		return custos.ErrorCode(err)
	}
	if !sameSession(got, s) {
		t.Errorf("Session(%s) = %+v, want %+v", s.Holder, got, s)
	}
	return ""
}

// testSessions: a session reads back whole under its tenant, kind and
// hash only; a second creation is a conflict; it is live up to and at
// Expires, gone after, and gone for good once read expired.
func testSessions(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	s := newSession(ten, custos.SessionConsole, "console:user:Ada", 0, 60)
	createSession(t, st, s)
	if err := st.CreateSession(t.Context(), s); custos.ErrorCode(err) != custos.Conflict {
		t.Errorf("CreateSession twice = %v, want code %s", err, custos.Conflict)
	}
	if c := sessionCode(t, st, s, at(1)); c != "" {
		t.Fatalf("Session of a live session: code %q, want found", c)
	}
	for _, k := range []struct {
		name string
		ten  custos.TenantID
		kind string
		hash [32]byte
	}{
		{"other tenant", other, s.Kind, s.Hash},
		{"operator chain", custos.OperatorChain, s.Kind, s.Hash},
		{"other kind", ten, custos.SessionPrivacy, s.Hash},
		{"other hash", ten, s.Kind, sessionHash()},
	} {
		if _, err := st.Session(t.Context(), k.ten, k.kind, k.hash, at(1)); custos.ErrorCode(err) != custos.NotFound {
			t.Errorf("Session under %s = %v, want code %s", k.name, err, custos.NotFound)
		}
	}
	if c := sessionCode(t, st, s, at(60)); c != "" {
		t.Errorf("Session at its expiry: code %q, want found (live while not after Expires)", c)
	}
	if c := sessionCode(t, st, s, at(60).Add(time.Microsecond)); c != custos.NotFound {
		t.Errorf("Session after its expiry: code %q, want %s", c, custos.NotFound)
	}
	if c := sessionCode(t, st, s, at(1)); c != custos.NotFound {
		t.Errorf("Session read with an earlier clock after it was read expired: code %q, want %s (deleted)", c, custos.NotFound)
	}

	op := newSession(custos.OperatorChain, custos.SessionConsole, "console:operator:Op", 0, 60)
	createSession(t, st, op)
	if c := sessionCode(t, st, op, at(1)); c != "" {
		t.Errorf("Session of the operator chain: code %q, want found", c)
	}
}

// testSessionUpdate: UpdateSession replaces Sealed of a live session and
// never brings back one that ended or expired.
func testSessionUpdate(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	s := newSession(ten, custos.SessionConsole, "h", 0, 60)
	createSession(t, st, s)
	if err := st.UpdateSession(t.Context(), ten, s.Kind, s.Hash, []byte("new"), at(1)); err != nil {
		t.Fatalf("UpdateSession = %v, want nil", err)
	}
	s.Sealed = []byte("new")
	if c := sessionCode(t, st, s, at(2)); c != "" {
		t.Errorf("Session after UpdateSession: code %q, want found", c)
	}
	if err := st.UpdateSession(t.Context(), ten, s.Kind, s.Hash, []byte("late"), at(61)); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("UpdateSession of an expired session = %v, want code %s", err, custos.NotFound)
	}
	ended := newSession(ten, custos.SessionConsole, "h", 0, 60)
	createSession(t, st, ended)
	if err := st.DeleteSession(t.Context(), ten, ended.Kind, ended.Hash); err != nil {
		t.Fatalf("DeleteSession = %v, want nil", err)
	}
	if err := st.UpdateSession(t.Context(), ten, ended.Kind, ended.Hash, []byte("again"), at(1)); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("UpdateSession of an ended session = %v, want code %s", err, custos.NotFound)
	}
	if c := sessionCode(t, st, ended, at(1)); c != custos.NotFound {
		t.Errorf("Session of an ended session after UpdateSession: code %q, want %s", c, custos.NotFound)
	}
}

// testSessionTake: a one-time link is taken once, by exactly one of
// callers racing for it, and not at all once expired.
func testSessionTake(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	l := newSession(ten, custos.SessionLink, "holder", 0, 900)
	l.User, l.How, l.IP, l.Agent = "", "", "", ""
	createSession(t, st, l)
	got, err := st.TakeSession(t.Context(), ten, l.Kind, l.Hash, at(10))
	if err != nil || !sameSession(got, l) {
		t.Fatalf("TakeSession = %+v, %v; want %+v", got, err, l)
	}
	if _, err := st.TakeSession(t.Context(), ten, l.Kind, l.Hash, at(11)); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("second TakeSession = %v, want code %s", err, custos.NotFound)
	}

	expired := newSession(ten, custos.SessionLink, "holder", 0, 900)
	createSession(t, st, expired)
	if _, err := st.TakeSession(t.Context(), ten, expired.Kind, expired.Hash, at(901)); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("TakeSession of an expired link = %v, want code %s", err, custos.NotFound)
	}
	if c := sessionCode(t, st, expired, at(1)); c != custos.NotFound {
		t.Errorf("Session of a link taken expired: code %q, want %s (deleted)", c, custos.NotFound)
	}

	raceTakes(t, ten, st)
}

// raceTakes creates a link through the first store, five times, and has
// eight TakeSession calls race for it through the stores in turn: exactly
// one gets it, the others NotFound, no other error.
func raceTakes(t *testing.T, ten custos.TenantID, stores ...custos.Store) {
	t.Helper()
	for round := range 5 {
		race := newSession(ten, custos.SessionLink, "holder", 0, 900)
		createSession(t, stores[0], race)
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, errs := 0, []error{}
		for i := range 8 {
			st := stores[i%len(stores)]
			wg.Go(func() {
				_, err := st.TakeSession(t.Context(), ten, race.Kind, race.Hash, at(5))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case custos.ErrorCode(err) != custos.NotFound:
					errs = append(errs, err)
				}
			})
		}
		wg.Wait()
		if won != 1 || len(errs) != 0 {
			t.Errorf("round %d: 8 TakeSession calls racing through %d handle(s): %d got the link, errors %v; want exactly 1, none", round, len(stores), won, errs)
		}
	}
}

// testSessionBelow: CreateSessionBelow stores while the holder has fewer
// live sessions of the kind than the limit (expired ones do not count,
// nor other holders' or kinds'), refuses a hash that exists, and of
// callers racing past the limit no more than the limit succeed.
func testSessionBelow(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten := newTenant(t, st)
	below := func(s *custos.Session, now time.Time, want bool) {
		t.Helper()
		if ok, err := st.CreateSessionBelow(t.Context(), s, 2, now); ok != want || err != nil {
			t.Errorf("CreateSessionBelow(%s, limit 2) at %s = %v, %v; want %v, nil", s.Holder, now.Format(time.TimeOnly), ok, err, want)
		}
	}
	old := newSession(ten, custos.SessionAttempt, "addr", 0, 10)
	below(old, at(0), true)
	second := newSession(ten, custos.SessionAttempt, "addr", 20, 600)
	below(second, at(20), true) // old expired at 10
	below(newSession(ten, custos.SessionAttempt, "addr", 25, 600), at(25), true)
	below(newSession(ten, custos.SessionAttempt, "addr", 30, 600), at(30), false)
	below(newSession(ten, custos.SessionAttempt, "other", 30, 600), at(30), true)
	below(newSession(ten, custos.SessionLink, "addr", 30, 600), at(30), true)
	dup := newSession(ten, custos.SessionAttempt, "dup", 30, 600)
	below(dup, at(30), true)
	if _, err := st.CreateSessionBelow(t.Context(), dup, 2, at(30)); custos.ErrorCode(err) != custos.Conflict {
		t.Errorf("CreateSessionBelow of an existing hash = %v, want code %s", err, custos.Conflict)
	}
	if n, err := st.CountHolderSessions(t.Context(), ten, custos.SessionAttempt, "addr", at(30)); n != 2 || err != nil {
		t.Errorf("CountHolderSessions(addr) = %d, %v; want 2 (the refused one not stored)", n, err)
	}
	// A deleted attempt (a sign-in that succeeded) frees its place, and
	// deleting the holder's frees them all.
	if err := st.DeleteSession(t.Context(), ten, custos.SessionAttempt, second.Hash); err != nil {
		t.Fatalf("DeleteSession = %v", err)
	}
	below(newSession(ten, custos.SessionAttempt, "addr", 31, 600), at(31), true)
	below(newSession(ten, custos.SessionAttempt, "addr", 32, 600), at(32), false)
	if n, err := st.DeleteHolderSessions(t.Context(), ten, custos.SessionAttempt, "addr"); n != 3 || err != nil {
		t.Errorf("DeleteHolderSessions(addr) = %d, %v; want 3 (two live, one expired not swept yet)", n, err)
	}
	below(newSession(ten, custos.SessionAttempt, "addr", 33, 600), at(33), true)
	raceBelow(t, ten, st)
}

// raceBelow has twelve CreateSessionBelow calls with a limit of 5, for one
// holder, race through the stores in turn: exactly 5 succeed, the others
// are refused without error, and 5 are stored.
func raceBelow(t *testing.T, ten custos.TenantID, stores ...custos.Store) {
	t.Helper()
	holder := fmt.Sprintf("race-%x", sessionHash())
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, errs := 0, []error{}
	for i := range 12 {
		st := stores[i%len(stores)]
		wg.Go(func() {
			ok, err := st.CreateSessionBelow(t.Context(), newSession(ten, custos.SessionAttempt, holder, 0, 900), 5, at(5))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case ok:
				stored++
			}
		})
	}
	wg.Wait()
	n, err := stores[0].CountHolderSessions(t.Context(), ten, custos.SessionAttempt, holder, at(5))
	if stored != 5 || n != 5 || err != nil || len(errs) != 0 {
		t.Errorf("12 CreateSessionBelow calls (limit 5) racing through %d handle(s): %d stored, %d counted (%v), errors %v; want 5, 5, none", len(stores), stored, n, err, errs)
	}
}

// testSessionList: Sessions lists the live sessions of one tenant and
// kind by creation; DeleteSession and DeleteHolderSessions end exactly
// what they name.
func testSessionList(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	ada2 := newSession(ten, custos.SessionConsole, "ada", 20, 600)
	ada1 := newSession(ten, custos.SessionConsole, "ada", 10, 600)
	bob := newSession(ten, custos.SessionConsole, "bob", 30, 600)
	old := newSession(ten, custos.SessionConsole, "bob", 0, 5)
	pc := newSession(ten, custos.SessionPrivacy, "ada", 10, 600)
	elsewhere := newSession(other, custos.SessionConsole, "ada", 10, 600)
	for _, s := range []*custos.Session{ada2, ada1, bob, old, pc, elsewhere} {
		createSession(t, st, s)
	}
	list := func(want ...*custos.Session) {
		t.Helper()
		got, err := st.Sessions(t.Context(), ten, custos.SessionConsole, at(40))
		if err != nil {
			t.Fatalf("Sessions = %v", err)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !slices.EqualFunc(got, want, sameSession) {
			var names []string
			for _, s := range got {
				names = append(names, fmt.Sprintf("%s@%s", s.Holder, s.Created.Format(time.TimeOnly)))
			}
			t.Errorf("Sessions = %v; want %d sessions by creation, without the expired one, the other kind's or the other tenant's", names, len(want))
		}
	}
	list(ada1, ada2, bob)
	if c := sessionCode(t, st, old, at(1)); c != custos.NotFound {
		t.Errorf("an expired session Sessions met: code %q, want %s (deleted)", c, custos.NotFound)
	}

	if err := st.DeleteSession(t.Context(), ten, bob.Kind, bob.Hash); err != nil {
		t.Errorf("DeleteSession = %v, want nil", err)
	}
	if err := st.DeleteSession(t.Context(), ten, bob.Kind, bob.Hash); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("DeleteSession of an ended session = %v, want code %s", err, custos.NotFound)
	}
	list(ada1, ada2)

	count := func(ten custos.TenantID, kind, holder string, now time.Time, want int) {
		t.Helper()
		if n, err := st.CountHolderSessions(t.Context(), ten, kind, holder, now); err != nil || n != want {
			t.Errorf("CountHolderSessions(%s, %s) at %s = %d, %v; want %d, nil", kind, holder, now.Format(time.TimeOnly), n, err, want)
		}
	}
	count(ten, custos.SessionConsole, "ada", at(40), 2)
	count(ten, custos.SessionConsole, "ada", at(615), 1) // ada1 expired at 610
	count(ten, custos.SessionConsole, "bob", at(40), 0)
	count(ten, custos.SessionPrivacy, "ada", at(40), 1)
	count(other, custos.SessionConsole, "ada", at(40), 1)
	n, err := st.DeleteHolderSessions(t.Context(), ten, custos.SessionConsole, "ada")
	if err != nil || n != 2 {
		t.Errorf("DeleteHolderSessions(ada) = %d, %v; want 2, nil", n, err)
	}
	list()
	count(ten, custos.SessionConsole, "ada", at(40), 0)
	if c := sessionCode(t, st, pc, at(40)); c != "" {
		t.Errorf("the holder's privacy session after ending its console sessions: code %q, want found", c)
	}
	if c := sessionCode(t, st, elsewhere, at(40)); c != "" {
		t.Errorf("the other tenant's session of the same holder: code %q, want found", c)
	}
	if n, err := st.DeleteHolderSessions(t.Context(), ten, custos.SessionConsole, "ada"); err != nil || n != 0 {
		t.Errorf("DeleteHolderSessions with none left = %d, %v; want 0, nil", n, err)
	}
}

// testSessionSweep: DeleteExpiredSessions removes expired sessions of
// every tenant and kind, at most limit a call, and no live one.
func testSessionSweep(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	var expired, live []*custos.Session
	for _, ten := range []custos.TenantID{newTenant(t, st), newTenant(t, st), custos.OperatorChain} {
		for i, kind := range []string{custos.SessionConsole, custos.SessionPrivacy, custos.SessionLink} {
			e := newSession(ten, kind, "h", i, 10)
			l := newSession(ten, kind, "h", i, 1000)
			createSession(t, st, e)
			createSession(t, st, l)
			expired, live = append(expired, e), append(live, l)
		}
	}
	now := at(100)
	n, err := st.DeleteExpiredSessions(t.Context(), now, 4)
	if err != nil || n != 4 {
		t.Fatalf("DeleteExpiredSessions(limit 4) of %d expired = %d, %v; want 4, nil", len(expired), n, err)
	}
	n, err = st.DeleteExpiredSessions(t.Context(), now, 100)
	if err != nil || n != len(expired)-4 {
		t.Errorf("DeleteExpiredSessions(limit 100) = %d, %v; want %d, nil", n, err, len(expired)-4)
	}
	if n, err := st.DeleteExpiredSessions(t.Context(), now, 100); err != nil || n != 0 {
		t.Errorf("DeleteExpiredSessions with none expired = %d, %v; want 0, nil", n, err)
	}
	for _, s := range expired {
		if c := sessionCode(t, st, s, at(0)); c != custos.NotFound {
			t.Errorf("expired %s session of %s after the sweep, read with an earlier clock: code %q, want %s", s.Kind, s.Tenant, c, custos.NotFound)
		}
	}
	for _, s := range live {
		if c := sessionCode(t, st, s, now); c != "" {
			t.Errorf("live %s session of %s after the sweep: code %q, want found", s.Kind, s.Tenant, c)
		}
	}
}

// testTOTPStep: a user's TOTP step is accepted once, later steps after
// it, earlier ones never; users and tenants are apart.
func testTOTPStep(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	ten, other := newTenant(t, st), newTenant(t, st)
	use := func(ten custos.TenantID, user string, step uint64, want bool) {
		t.Helper()
		got, err := st.UseTOTPStep(t.Context(), ten, user, step)
		if err != nil || got != want {
			t.Errorf("UseTOTPStep(%s, %d) = %v, %v; want %v, nil", user, step, got, err, want)
		}
	}
	use(ten, "ada", 100, true)
	use(ten, "ada", 100, false)
	use(ten, "ada", 99, false)
	use(ten, "ada", 101, true)
	use(ten, "bob", 100, true)
	use(other, "ada", 100, true)

	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 8 {
		wg.Go(func() {
			ok, err := st.UseTOTPStep(t.Context(), ten, "ada", 200)
			if err != nil {
				t.Errorf("UseTOTPStep racing = %v", err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("8 racing UseTOTPStep calls of one step: %d accepted, want 1", won)
	}
}

// testDeleteTenantSessions: deleting a tenant deletes its sessions and
// TOTP steps, and nothing of a tenant whose id is its neighbour. The
// pairs share one store (some share ids): each starts by deleting its
// tenants if an earlier pair left them.
func testDeleteTenantSessions(t *testing.T, open func(*testing.T) custos.Store) {
	st := open(t)
	for _, pair := range neighbourPairs() {
		t.Run(pair.name, func(t *testing.T) {
			del, keep := custos.TenantID(pair.a), custos.TenantID(pair.b)
			for _, ten := range []custos.TenantID{del, keep} {
				if err := st.DeleteTenant(t.Context(), ten); err != nil && custos.ErrorCode(err) != custos.NotFound {
					t.Fatalf("DeleteTenant before the pair = %v", err)
				}
			}
			var sessions [2][]*custos.Session
			for i, ten := range []custos.TenantID{del, keep} {
				createTenant(t, st, ten)
				for _, kind := range []string{custos.SessionConsole, custos.SessionPrivacy, custos.SessionLink} {
					s := newSession(ten, kind, "h", 0, 60)
					createSession(t, st, s)
					sessions[i] = append(sessions[i], s)
				}
				if ok, err := st.UseTOTPStep(t.Context(), ten, "ada", 100); !ok || err != nil {
					t.Fatalf("UseTOTPStep = %v, %v", ok, err)
				}
			}
			if err := st.DeleteTenant(t.Context(), del); err != nil {
				t.Fatalf("DeleteTenant = %v", err)
			}
			for _, s := range sessions[0] {
				if c := sessionCode(t, st, s, at(1)); c != custos.NotFound {
					t.Errorf("%s session of the deleted tenant: code %q, want %s", s.Kind, c, custos.NotFound)
				}
			}
			for _, s := range sessions[1] {
				if c := sessionCode(t, st, s, at(1)); c != "" {
					t.Errorf("%s session of the kept tenant: code %q, want found", s.Kind, c)
				}
			}
			createTenant(t, st, del)
			if ok, err := st.UseTOTPStep(t.Context(), del, "ada", 100); !ok || err != nil {
				t.Errorf("UseTOTPStep of a step used before the tenant was deleted and recreated = %v, %v; want true (forgotten)", ok, err)
			}
			if ok, err := st.UseTOTPStep(t.Context(), keep, "ada", 100); ok || err != nil {
				t.Errorf("UseTOTPStep of the kept tenant's used step = %v, %v; want false", ok, err)
			}
		})
	}
}

// testSessionsAcrossHandles: a session started through one handle opens
// through the other and ends there for both; a one-time link is taken
// once of two handles racing; a TOTP step used through one is refused
// through the other.
func testSessionsAcrossHandles(t *testing.T, a, b custos.Store) {
	ten := newTenant(t, a)
	s := newSession(ten, custos.SessionConsole, "ada", 0, 600)
	createSession(t, a, s)
	if c := sessionCode(t, b, s, at(1)); c != "" {
		t.Fatalf("second handle: Session of a session started on the first: code %q, want found", c)
	}
	if err := b.DeleteSession(t.Context(), ten, s.Kind, s.Hash); err != nil {
		t.Fatalf("second handle: DeleteSession = %v", err)
	}
	if c := sessionCode(t, a, s, at(1)); c != custos.NotFound {
		t.Errorf("first handle: Session ended through the second: code %q, want %s", c, custos.NotFound)
	}

	raceTakes(t, ten, a, b)
	raceBelow(t, ten, a, b)

	if ok, err := a.UseTOTPStep(t.Context(), ten, "ada", 7); !ok || err != nil {
		t.Fatalf("first handle: UseTOTPStep = %v, %v; want true", ok, err)
	}
	if ok, err := b.UseTOTPStep(t.Context(), ten, "ada", 7); ok || err != nil {
		t.Errorf("second handle: UseTOTPStep of a step used through the first = %v, %v; want false", ok, err)
	}
}
