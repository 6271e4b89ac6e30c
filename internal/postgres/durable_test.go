package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/custos-dev/custos/internal/testenv"
)

// TestRefusesFsyncOff checks that a database whose server runs with
// fsync off is refused, with an error saying why: a commit there would not
// survive a crash, so no 2xx could mean durable.
func TestRefusesFsyncOff(t *testing.T) {
	pg := pgtest.NewServer(t, "nofsync", "fsync = off")
	pg.Exec(t, "postgres", "CREATE DATABASE k")
	ks, err := postgres.OpenKeyStore(t.Context(), pg.URL("k"), postgres.Options{MasterKey: testMaster})
	if err == nil {
		ks.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "fsync = off") {
		t.Errorf("OpenKeyStore on a server with fsync off = %v, want a refusal naming fsync", err)
	}
}

// TestUnavailableWhileDown stops the server under an open key store: calls
// fail as custos.Unavailable (a 503 for clients, never a 4xx), and after
// the first failed connection attempt they fail at once, without dialling
// (the breaker); once the server is back the store works again by itself.
func TestUnavailableWhileDown(t *testing.T) {
	pg := pgtest.NewServer(t, "flaky", "")
	pg.Exec(t, "postgres", "CREATE DATABASE k")
	ks, err := postgres.OpenKeyStore(t.Context(), pg.URL("k"), postgres.Options{MasterKey: testMaster, Holdoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	tn, s := custos.TenantID(random16()), custos.SubjectID(random16())
	mustPut(t, ks, tn, s, []byte("before"))
	pg.Stop(t)

	ctx := context.Background()
	var ce *custos.Error
	if _, err := ks.SubjectKey(ctx, tn, s); !errors.As(err, &ce) || ce.Code != custos.Unavailable {
		t.Fatalf("SubjectKey with the server down = %v, want custos.Unavailable", err)
	}
	// Once a connection attempt has failed on every host, the breaker is
	// open (an hour's holdoff here): calls fail without dialling.
	const open = "gave a writable connection moments ago"
	testenv.Poll(t, 10*time.Second, "the breaker opening", func() bool {
		_, err := ks.SubjectKey(ctx, tn, s)
		return err != nil && strings.Contains(err.Error(), open)
	})
	for range 50 {
		if _, err := ks.SubjectKey(ctx, tn, s); !errors.As(err, &ce) || ce.Code != custos.Unavailable || !strings.Contains(err.Error(), open) {
			t.Fatalf("SubjectKey with the breaker open = %v, want custos.Unavailable without a connection attempt", err)
		}
	}
	if err := ks.Ping(ctx); !errors.As(err, &ce) || ce.Code != custos.Unavailable {
		t.Errorf("Ping with the server down = %v, want custos.Unavailable", err)
	}
}

// TestBackAfterHoldoff checks that a store recovers by itself once the
// server is back, within the default holdoff.
func TestBackAfterHoldoff(t *testing.T) {
	pg := pgtest.NewServer(t, "back", "")
	pg.Exec(t, "postgres", "CREATE DATABASE k")
	ks, err := postgres.OpenKeyStore(t.Context(), pg.URL("k"), postgres.Options{MasterKey: testMaster})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	tn, s := custos.TenantID(random16()), custos.SubjectID(random16())
	mustPut(t, ks, tn, s, []byte("before"))
	pg.Stop(t)
	if _, err := ks.SubjectKey(t.Context(), tn, s); err == nil {
		t.Fatal("SubjectKey with the server down = nil")
	}
	pg.Start(t)
	testenv.Poll(t, 10*time.Second, "the key store answering again", func() bool {
		got, err := ks.SubjectKey(t.Context(), tn, s)
		return err == nil && string(got) == "before"
	})
}
