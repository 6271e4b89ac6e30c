package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pgtest"
	"github.com/custos-dev/custos/internal/postgres"
	"github.com/jackc/pgx/v5"
)

// storedRow reads a subject key row as stored.
func storedRow(t *testing.T, url string, tn custos.TenantID, s custos.SubjectID) (stored []byte, epoch *int64) {
	t.Helper()
	if err := connect(t, url).QueryRow(t.Context(), "SELECT wrapped, epoch FROM subject_keys WHERE tenant_id = $1 AND subject_id = $2", tn[:], s[:]).Scan(&stored, &epoch); err != nil {
		t.Fatal(err)
	}
	return stored, epoch
}

// TestKeyEpochRotation checks the key epochs on one database shared by two
// handles (two nodes): keys are stored sealed (not as given) under the
// current epoch; a rotation on one handle re-seals every live key under a
// new epoch and deletes the old epoch's key; both handles, and a fresh
// one, read every key back unchanged; a shredded key stays shredded; a
// rotation not due does nothing.
func TestKeyEpochRotation(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	a, b := openKeyStore(t, url), openKeyStore(t, url)
	if a.Epoch() != 1 || b.Epoch() != 1 {
		t.Fatalf("a fresh database: epochs %d and %d, want 1", a.Epoch(), b.Epoch())
	}
	tn := custos.TenantID(random16())
	keys := map[custos.SubjectID][]byte{}
	for i := range 1500 { // more than one page of the re-sealing
		s := custos.SubjectID(random16())
		keys[s] = random(60)
		mustPut(t, []*postgres.KeyStore{a, b}[i%2], tn, s, keys[s])
	}
	var gone custos.SubjectID
	for s := range keys {
		gone = s
		break
	}
	before, e := storedRow(t, url, tn, gone)
	if e == nil || *e != 1 || bytes.Contains(before, keys[gone]) {
		t.Fatalf("a stored key: epoch %v, stored %x; want epoch 1 and the key sealed, not as given (%x)", e, before, keys[gone])
	}
	if err := b.ShredSubjectKey(ctx, tn, gone); err != nil {
		t.Fatal(err)
	}
	delete(keys, gone)

	if res, err := a.Rotate(ctx, 1<<40); err != nil || res.Rotated {
		t.Errorf("Rotate with a period not elapsed = %+v, %v; want nothing done", res, err)
	}
	res, err := a.Rotate(ctx, 0)
	if err != nil || !res.Rotated || res.From != 1 || res.To != 2 || res.Resealed != len(keys) || res.PurgeErr != nil {
		t.Fatalf("Rotate = %+v, %v; want 1 → 2 with %d keys re-sealed and the purge done", res, err, len(keys))
	}
	var epochs []int64
	rows, err := connect(t, url).Query(ctx, "SELECT epoch FROM key_epochs ORDER BY epoch")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var e int64
		if err := rows.Scan(&e); err != nil {
			t.Fatal(err)
		}
		epochs = append(epochs, e)
	}
	if fmt.Sprint(epochs) != "[2]" {
		t.Errorf("epochs after the rotation = %v, want [2] (the old epoch key deleted)", epochs)
	}
	c := openKeyStore(t, url)
	for name, ks := range map[string]*postgres.KeyStore{"rotating handle": a, "other handle": b, "fresh handle": c} {
		n := 0
		for s, want := range keys {
			if n++; n > 200 {
				break
			}
			if got, err := ks.SubjectKey(ctx, tn, s); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: SubjectKey after the rotation = %x, %v; want %x", name, got, err, want)
			}
		}
		if _, err := ks.SubjectKey(ctx, tn, gone); !errors.Is(err, custos.ErrShredded) {
			t.Errorf("%s: the shredded key after the rotation: %v, want ErrShredded", name, err)
		}
		seen := 0
		err := ks.SubjectKeys(ctx, tn, custos.SubjectID{}, custos.SubjectID(bytes.Repeat([]byte{0xff}, 16)), func(s custos.SubjectID, w []byte) (bool, error) {
			if !bytes.Equal(w, keys[s]) {
				return false, fmt.Errorf("SubjectKeys gave %x for %s, want %x", w, s, keys[s])
			}
			seen++
			return true, nil
		})
		if err != nil || seen != len(keys) {
			t.Errorf("%s: SubjectKeys after the rotation saw %d keys, %v; want %d", name, seen, err, len(keys))
		}
	}
	// The other handle still sealed under epoch 1 in memory: its next put
	// finds epoch 1 retired, reloads and stores under epoch 2.
	s := custos.SubjectID(random16())
	mustPut(t, b, tn, s, []byte("after the rotation"))
	if _, e := storedRow(t, url, tn, s); e == nil || *e != 2 {
		t.Errorf("a put by a handle that had not seen the rotation: epoch %v, want 2", e)
	}
}

// TestKeyEpochRotationRacesPuts rotates while two handles put keys: every
// key put is readable afterwards, under the new epoch, whichever order
// the puts and the rotation's steps took.
func TestKeyEpochRotationRacesPuts(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	a, b := openKeyStore(t, url), openKeyStore(t, url)
	tn := custos.TenantID(random16())
	var mu sync.Mutex
	keys := map[custos.SubjectID][]byte{}
	var wg sync.WaitGroup
	for _, ks := range []*postgres.KeyStore{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 300 {
				s, v := custos.SubjectID(random16()), random(48)
				if _, err := ks.PutSubjectKey(ctx, tn, s, v); err != nil {
					t.Errorf("PutSubjectKey during a rotation: %v", err)
					return
				}
				mu.Lock()
				keys[s] = v
				mu.Unlock()
			}
		}()
	}
	for range 3 {
		if _, err := a.Rotate(ctx, 0); err != nil {
			t.Errorf("Rotate during puts: %v", err)
		}
	}
	wg.Wait()
	if _, err := b.Rotate(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var stale int
	if err := connect(t, url).QueryRow(ctx, "SELECT count(*) FROM subject_keys WHERE epoch IS DISTINCT FROM 5").Scan(&stale); err != nil || stale != 0 {
		t.Errorf("%d keys not under the last epoch (5), %v", stale, err)
	}
	fresh := openKeyStore(t, url)
	for s, want := range keys {
		if got, err := fresh.SubjectKey(ctx, tn, s); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("SubjectKey after rotations racing puts = %x, %v; want %x", got, err, want)
		}
	}
}

// TestKeyEpochsNeedTheMasterKey checks that a key database's epochs open
// only under the master key they were sealed with, that Rewrap moves them
// to a new master key (idempotently), and that a store without a master
// key is refused.
func TestKeyEpochsNeedTheMasterKey(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	ks := openKeyStore(t, url)
	tn, s := custos.TenantID(random16()), custos.SubjectID(random16())
	mustPut(t, ks, tn, s, []byte("a wrapped subject key"))
	other := bytes.Repeat([]byte{9}, 32)
	if _, err := postgres.OpenKeyStore(ctx, url, postgres.Options{MasterKey: other}); !errors.Is(err, postgres.ErrEpochMaster) {
		t.Errorf("OpenKeyStore with another master key = %v, want ErrEpochMaster", err)
	}
	if _, err := postgres.OpenKeyStore(ctx, url, postgres.Options{}); err == nil {
		t.Errorf("OpenKeyStore without a master key = nil, want an error")
	}
	for range 2 {
		if err := ks.Rewrap(ctx, other); err != nil {
			t.Fatalf("Rewrap = %v", err)
		}
	}
	if _, err := postgres.OpenKeyStore(ctx, url, postgres.Options{MasterKey: testMaster}); !errors.Is(err, postgres.ErrEpochMaster) {
		t.Errorf("OpenKeyStore with the old master key after Rewrap = %v, want ErrEpochMaster", err)
	}
	moved, err := postgres.OpenKeyStore(ctx, url, postgres.Options{MasterKey: other})
	if err != nil {
		t.Fatalf("OpenKeyStore with the new master key after Rewrap = %v", err)
	}
	defer moved.Close()
	if got, err := moved.SubjectKey(ctx, tn, s); err != nil || string(got) != "a wrapped subject key" {
		t.Errorf("SubjectKey under the new master key = %q, %v", got, err)
	}
}

// TestKeyEpochsSealLegacyKeys checks that keys stored before key epochs
// existed (epoch NULL, stored as given) are read as they are and sealed
// by the first rotation.
func TestKeyEpochsSealLegacyKeys(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	ks := openKeyStore(t, url)
	tn, s := custos.TenantID(random16()), custos.SubjectID(random16())
	legacy := []byte("stored before key epochs")
	if _, err := connect(t, url).Exec(ctx, "INSERT INTO subject_keys (tenant_id, subject_id, wrapped) VALUES ($1, $2, $3)", tn[:], s[:], legacy); err != nil {
		t.Fatal(err)
	}
	if got, err := ks.SubjectKey(ctx, tn, s); err != nil || !bytes.Equal(got, legacy) {
		t.Fatalf("a legacy key = %q, %v", got, err)
	}
	if res, err := ks.Rotate(ctx, 0); err != nil || res.Resealed != 1 {
		t.Fatalf("Rotate = %+v, %v; want the legacy key re-sealed", res, err)
	}
	if stored, e := storedRow(t, url, tn, s); e == nil || bytes.Contains(stored, legacy) {
		t.Errorf("the legacy key after a rotation: epoch %v, stored %q; want sealed under an epoch", e, stored)
	}
	if got, err := ks.SubjectKey(ctx, tn, s); err != nil || !bytes.Equal(got, legacy) {
		t.Errorf("the legacy key after a rotation = %q, %v", got, err)
	}
}

func random16() [16]byte {
	var b [16]byte
	copy(b[:], random(16))
	return b
}

// TestKeyEpochRotationResumes checks that a rotation interrupted after
// making its epoch (two epochs in the table, keys under both) is finished
// by the next Rotate although the new epoch is not due, and that an epoch
// row does not open under another epoch number.
func TestKeyEpochRotationResumes(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	ks := openKeyStore(t, url)
	tn, s1, s2 := custos.TenantID(random16()), custos.SubjectID(random16()), custos.SubjectID(random16())
	mustPut(t, ks, tn, s1, []byte("under epoch 1"))
	// The interrupted rotation: epoch 2 made, nothing re-sealed, epoch 1
	// not retired; a handle opened now seals under epoch 2.
	if err := postgres.MakeEpoch(ctx, ks); err != nil {
		t.Fatal(err)
	}
	fresh := openKeyStore(t, url)
	mustPut(t, fresh, tn, s2, []byte("under epoch 2"))
	if _, e := storedRow(t, url, tn, s2); e == nil || *e != 2 {
		t.Fatalf("a put after the interrupted rotation: epoch %v, want 2", e)
	}
	res, err := ks.Rotate(ctx, 1<<40)
	if err != nil || !res.Rotated || res.From != 1 || res.To != 2 || res.Resealed != 1 {
		t.Fatalf("Rotate after an interrupted rotation = %+v, %v; want 1 → 2 finished, one key re-sealed", res, err)
	}
	for s, want := range map[custos.SubjectID]string{s1: "under epoch 1", s2: "under epoch 2"} {
		if got, err := fresh.SubjectKey(ctx, tn, s); err != nil || string(got) != want {
			t.Errorf("SubjectKey = %q, %v; want %q", got, err, want)
		}
	}
	// An epoch row copied under another number does not open.
	if _, err := connect(t, url).Exec(ctx, "INSERT INTO key_epochs (epoch, wrapped) SELECT 3, wrapped FROM key_epochs WHERE epoch = 2"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.OpenKeyStore(ctx, url, postgres.Options{MasterKey: testMaster}); !errors.Is(err, postgres.ErrEpochMaster) {
		t.Errorf("OpenKeyStore with an epoch row copied under another number = %v, want ErrEpochMaster", err)
	}
}

// BenchmarkKeyEpochRotation measures a rotation of 100 000 live subject
// keys (stored as before key epochs, then sealed by the first rotation
// and re-sealed by each next one):
//
//	go test -run '^$' -bench KeyEpochRotation -benchtime 2x ./internal/postgres/
func BenchmarkKeyEpochRotation(b *testing.B) {
	ctx := b.Context()
	url := pgtest.NewDatabase(b)
	ks := openKeyStore(b, url)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	const n = 100_000
	if _, err := conn.Exec(ctx, `INSERT INTO subject_keys (tenant_id, subject_id, wrapped)
		SELECT decode('00112233445566778899aabbccddeeff', 'hex'), decode(lpad(to_hex(i), 32, '0'), 'hex'),
			decode(md5(i::text) || md5((i+1)::text) || md5((i+2)::text) || 'aabbccdd', 'hex')
		FROM generate_series(1, $1) i`, n); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := ks.Rotate(ctx, 0)
		if err != nil || res.Resealed != n {
			b.Fatalf("Rotate = %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
