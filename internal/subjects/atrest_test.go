package subjects_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos-dev/custos"
	"github.com/custos-dev/custos/internal/pebble"
	"github.com/custos-dev/custos/internal/segment"
	"github.com/custos-dev/custos/internal/subjects"
)

// forms returns the ways a canary could appear in a file: raw, JSON-escaped,
// and base64 at each of the three alignments (and URL-safe), so that a
// canary inside a larger base64 blob is found too.
func forms(canary string) [][]byte {
	q, _ := json.Marshal(canary)
	out := [][]byte{[]byte(canary), q[1 : len(q)-1]}
	for pad := range 3 {
		src := append(bytes.Repeat([]byte{0}, pad), canary...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(src)
			// Drop the characters that mix padding or the following byte in.
			s = strings.TrimRight(s, "=")
			start := (pad*8 + 5) / 6
			end := len(s) - 2
			if end > start {
				out = append(out, []byte(s[start:end]))
			}
		}
	}
	return out
}

// scanDir fails the test for every file under dir holding any form of a canary.
func scanDir(t *testing.T, dir string, canaries []string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, c := range canaries {
			for _, f := range forms(c) {
				if bytes.Contains(data, f) {
					t.Errorf("%s holds canary %q (as %q)", path, c, f)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("scanned only %d files under %s; the scan proves nothing", files, dir)
	}
}

func TestNoPersonalDataAtRest(t *testing.T) {
	e := newEnv(t)
	canaries := []string{
		"CANARY-userid-7f3a9c", "CANARY-anonid-2b8e41", "canary-mail-55d0@example.com",
		"CANARY-trait-c4e7a1", "CANARY-property-9d2f60", "198.51.100.177", "CANARY-device-e1f2a3",
	}
	body := `{"batch":[
	  {"type":"identify","messageId":"m1","userId":"` + canaries[0] + `","anonymousId":"` + canaries[1] + `",
	   "traits":{"email":"` + canaries[2] + `","favourite":"` + canaries[3] + `"},
	   "context":{"ip":"` + canaries[5] + `","device":{"advertisingId":"` + canaries[6] + `"}}},
	  {"type":"track","messageId":"m2","anonymousId":"` + canaries[1] + `","event":"Viewed",
	   "properties":{"note":"` + canaries[4] + `"},"context":{"ip":"` + canaries[5] + `"}}]}`
	batch, err := segment.Decode([]byte(body), segment.Kind{Batch: true}, t0, segment.DefaultLimits)
	if err != nil || len(batch.Messages) != 2 {
		t.Fatalf("decode: %v, %d messages", err, len(batch.Messages))
	}
	e.ingest(t, batch.Messages...)
	// The data is there and readable through the keys...
	s := e.find(t, custos.UserID, canaries[0])
	p, err := e.rd.Profile(context.Background(), e.tenant, s)
	if err != nil || string(p.Traits["favourite"]) != `"`+canaries[3]+`"` {
		t.Fatalf("profile = %+v, %v; want the trait back", p, err)
	}
	// ...and nowhere on disk in the clear: WAL, sstables, MANIFEST, OPTIONS, keys.
	e.close(t)
	scanDir(t, e.dir, canaries)

	// Again after everything was flushed and compacted into sstables.
	st, err := pebble.Open(filepath.Join(e.dir, "store"), pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CompactAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	scanDir(t, e.dir, canaries)
}

// copyDir copies a closed store directory: a backup.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBackupOfDataCannotResurrectAShreddedSubject(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ingest(t, msg(custos.Identify, "erased-user", "", 0), msg(custos.Track, "erased-user", "", time.Second),
		msg(custos.Identify, "kept-user", "", 0), msg(custos.Track, "kept-user", "", time.Second))
	erased, kept := e.find(t, custos.UserID, "erased-user"), e.find(t, custos.UserID, "kept-user")

	// Back up the data store, on its own, as the README says.
	e.close(t)
	backup := filepath.Join(t.TempDir(), "store-backup")
	copyDir(t, filepath.Join(e.dir, "store"), backup)
	e.open(t)

	if err := e.ring.Shred(ctx, e.tenant, erased); err != nil {
		t.Fatal(err)
	}

	// Restore: the old data next to the current key store.
	old, err := pebble.Open(backup, pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	rd := subjects.NewReader(old, e.ring)
	if _, err := rd.Find(ctx, e.tenant, custos.Identifier{Type: custos.UserID, Value: "erased-user"}); err != nil {
		t.Fatalf("the backup should still index the erased subject (else the test proves nothing): %v", err)
	}
	if _, err := rd.Profile(ctx, e.tenant, erased); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("erased subject's profile from the backup: err = %v, want NotFound", err)
	}
	if err := rd.EachEvent(ctx, e.tenant, erased, func(custos.Event) error { return nil }); custos.ErrorCode(err) != custos.NotFound {
		t.Errorf("erased subject's events from the backup: err = %v, want NotFound", err)
	}
	// Its sealed records are still in the backup, and unopenable.
	n := 0
	err = old.Events(ctx, e.tenant, erased, nil, func(se custos.StoredEvent) (bool, error) {
		n++
		if _, err := e.ring.Open(ctx, e.tenant, erased, nil, se.Value); !errors.Is(err, custos.ErrShredded) {
			t.Errorf("opening a backed-up record of the erased subject: err = %v, want ErrShredded", err)
		}
		return true, nil
	})
	if err != nil || n != 2 {
		t.Errorf("sealed records of the erased subject in the backup = %d (err %v), want 2", n, err)
	}
	// Everyone else restores fine.
	p, err := rd.Profile(ctx, e.tenant, kept)
	if err != nil || p.Identifiers["user_id"][0] != "kept-user" {
		t.Errorf("kept subject from the backup = %+v, %v", p, err)
	}
	evs := 0
	if err := rd.EachEvent(ctx, e.tenant, kept, func(custos.Event) error { evs++; return nil }); err != nil || evs != 2 {
		t.Errorf("kept subject's events from the backup = %d, %v; want 2", evs, err)
	}
}
