package postgres

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Key epochs. PostgreSQL never overwrites a row in place: a shredded
// subject key's old row version stays in the table until VACUUM, its bytes
// in the page's free space until the page is reused, in WAL until the
// segment is recycled, and in every backup and WAL archive until they
// expire. So the key store seals every subject key, before storing it,
// under the key of the current epoch, and rotates the epoch: a new epoch
// key is made, every live subject key is re-sealed under it, and the old
// epoch key is deleted and purged (the epoch table is rewritten whole, a
// CHECKPOINT and a WAL switch make the WAL holding it removable). Once the
// old epoch key is gone, every lingering copy of a subject key shredded
// during that epoch is ciphertext under a key that exists nowhere.
//
// The epoch keys live in the key database (a node must be able to restart
// and other nodes must share them), sealed under a key derived from the
// master key. docs/postgres.md states the bound this gives and the backup
// policy it implies.

// epochKeyInfo derives the key that seals epoch keys from the master key.
const epochKeyInfo = "custos postgres key epochs v1"

// epochLock is the advisory lock id held by the node rotating the epoch.
const epochLock = 0x637573746f730002

// ErrEpochMaster is returned by OpenKeyStore when the database's epoch
// keys do not open under the master key given.
var ErrEpochMaster = errors.New("the key epochs of this key database are sealed under another master key")

type epochState struct {
	mu      sync.RWMutex
	kek     cipher.AEAD
	keys    map[int64]cipher.AEAD
	current int64
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// kekFor derives the epoch-sealing key of a master key.
func kekFor(master []byte) (cipher.AEAD, error) {
	if len(master) == 0 {
		return nil, errors.New("the key store needs the master key (Options.MasterKey) to seal its epoch keys")
	}
	k, err := hkdf.Key(sha256.New, master, nil, epochKeyInfo, 32)
	if err != nil {
		return nil, err
	}
	return newGCM(k)
}

// sealWith seals plaintext under a with a random nonce: nonce || ciphertext.
func sealWith(a cipher.AEAD, ad, plaintext []byte) []byte {
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plaintext)+a.Overhead())
	rand.Read(nonce)
	return a.Seal(nonce, nonce, plaintext, ad)
}

func openWith(a cipher.AEAD, ad, sealed []byte) ([]byte, error) {
	if len(sealed) < a.NonceSize() {
		return nil, errors.New("sealed value too short")
	}
	return a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], ad)
}

func adEpoch(e int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("epoch "), uint64(e))
}

func adSubject(t custos.TenantID, s custos.SubjectID) []byte {
	ad := make([]byte, 0, 32)
	ad = append(ad, t[:]...)
	return append(ad, s[:]...)
}

// loadEpochs reads the epoch keys, making the first epoch if there is
// none, and replaces the ones held in memory (forgetting destroyed ones).
func (ks *KeyStore) loadEpochs(ctx context.Context) error {
	for range 2 {
		rows, err := ks.pool.Query(ctx, "SELECT epoch, wrapped FROM key_epochs ORDER BY epoch")
		if err != nil {
			return dbError("key store: read key epochs", err)
		}
		keys := map[int64]cipher.AEAD{}
		var current int64
		ks.ep.mu.RLock()
		kek := ks.ep.kek
		ks.ep.mu.RUnlock()
		for rows.Next() {
			var e int64
			var w []byte
			if err := rows.Scan(&e, &w); err != nil {
				rows.Close()
				return dbError("key store: read key epochs", err)
			}
			k, err := openWith(kek, adEpoch(e), w)
			if err != nil {
				rows.Close()
				return fmt.Errorf("key store: epoch %d: %w", e, ErrEpochMaster)
			}
			a, err := newGCM(k)
			if err != nil {
				rows.Close()
				return fmt.Errorf("key store: epoch %d: %w", e, err)
			}
			keys[e], current = a, e
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return dbError("key store: read key epochs", err)
		}
		if current != 0 {
			ks.ep.mu.Lock()
			ks.ep.keys, ks.ep.current = keys, current
			ks.ep.mu.Unlock()
			return nil
		}
		// The first node on a fresh database makes epoch 1; nodes racing
		// it keep the winner's.
		if _, err := ks.pool.Exec(ctx, "INSERT INTO key_epochs (epoch, wrapped) VALUES (1, $1) ON CONFLICT (epoch) DO NOTHING",
			sealWith(kek, adEpoch(1), newEpochKey())); err != nil {
			return dbError("key store: make the first key epoch", err)
		}
	}
	return errors.New("key store: no key epoch after making the first")
}

func newEpochKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// currentEpoch returns the epoch new subject keys are sealed under.
func (ks *KeyStore) currentEpoch() (int64, cipher.AEAD) {
	ks.ep.mu.RLock()
	defer ks.ep.mu.RUnlock()
	return ks.ep.current, ks.ep.keys[ks.ep.current]
}

func (ks *KeyStore) epochKey(e int64) (cipher.AEAD, bool) {
	ks.ep.mu.RLock()
	defer ks.ep.mu.RUnlock()
	a, ok := ks.ep.keys[e]
	return a, ok
}

// Epoch returns the current key epoch (for logs and tests).
func (ks *KeyStore) Epoch() int64 {
	e, _ := ks.currentEpoch()
	return e
}

// unseal opens a stored subject key sealed under epoch e (nil: stored
// before key epochs existed, not sealed); ok is false if this node does
// not know e (a rotation elsewhere made or retired it).
func (ks *KeyStore) unseal(t custos.TenantID, s custos.SubjectID, e *int64, stored []byte) (wrapped []byte, ok bool, err error) {
	if e == nil {
		return stored, true, nil
	}
	a, known := ks.epochKey(*e)
	if !known {
		return nil, false, nil
	}
	w, err := openWith(a, adSubject(t, s), stored)
	if err != nil {
		return nil, true, fmt.Errorf("key store: subject key %s/%s does not open under epoch %d: %w", t, s, *e, err)
	}
	return w, true, nil
}

// RotateResult says what a rotation did.
type RotateResult struct {
	// Rotated is false when the current epoch was not due or another
	// node was rotating.
	Rotated bool
	// From and To are the old and new epochs; Resealed counts the live
	// subject keys moved to To.
	From, To int64
	Resealed int
	// PurgeErr is set when the physical purge after the rotation was
	// refused (VACUUM FULL, CHECKPOINT and pg_switch_wal need the table's
	// owner, pg_checkpoint and EXECUTE on pg_switch_wal): the old epoch
	// key is deleted but its bytes then wait for autovacuum and the
	// server's own checkpoints.
	PurgeErr error
}

// Rotate starts a new key epoch if the current one is older than period
// (always if period is 0): it makes the new epoch key, re-seals every live
// subject key under it, deletes the older epoch keys and purges them
// physically (see RotateResult.PurgeErr). One node rotates at a time
// (an advisory lock); the others find nothing to do. A rotation that was
// interrupted (two epochs in the table) is finished first, due or not.
func (ks *KeyStore) Rotate(ctx context.Context, period time.Duration) (RotateResult, error) {
	var res RotateResult
	conn, err := ks.pool.Acquire(ctx)
	if err != nil {
		return res, dbError("key store: rotate epoch", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(epochLock)).Scan(&locked); err != nil {
		return res, dbError("key store: rotate epoch", err)
	}
	if !locked {
		return res, nil
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(epochLock))

	var oldest, newest int64
	var due bool
	if err := conn.QueryRow(ctx, `SELECT min(epoch), max(epoch), max(created_at) <= now() - make_interval(secs => $1)
		FROM key_epochs`, period.Seconds()).Scan(&oldest, &newest, &due); err != nil {
		return res, dbError("key store: rotate epoch", err)
	}
	switch {
	case oldest < newest:
		// A rotation was interrupted after making its epoch: finish it.
		res.From, res.To = oldest, newest
	case !due && period > 0:
		return res, ks.loadEpochs(ctx)
	default:
		res.From, res.To = newest, newest+1
		ks.ep.mu.RLock()
		kek := ks.ep.kek
		ks.ep.mu.RUnlock()
		if _, err := conn.Exec(ctx, "INSERT INTO key_epochs (epoch, wrapped) VALUES ($1, $2)", res.To, sealWith(kek, adEpoch(res.To), newEpochKey())); err != nil {
			return res, dbError("key store: new epoch", err)
		}
	}
	if err := ks.loadEpochs(ctx); err != nil {
		return res, err
	}
	// Re-seal in pages, in key order; a put or shred racing a page wins
	// (the update is conditional on the row being as read).
	var lastT, lastS []byte
	for {
		n, last, more, err := ks.resealPage(ctx, conn, res.To, lastT, lastS)
		res.Resealed += n
		if err != nil {
			return res, err
		}
		if !more {
			break
		}
		lastT, lastS = last[0], last[1]
	}
	// Retire the old epochs: deleting their rows waits for puts still
	// sealing under them (they lock the epoch row); the keys those puts
	// stored are re-sealed in the same transaction.
	tx, err := conn.Begin(ctx)
	if err != nil {
		return res, dbError("key store: retire epoch", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "DELETE FROM key_epochs WHERE epoch < $1", res.To); err != nil {
		return res, dbError("key store: retire epoch", err)
	}
	n, err := ks.resealRows(ctx, tx, res.To, `SELECT tenant_id, subject_id, wrapped, epoch FROM subject_keys
		WHERE NOT shredded AND (epoch IS NULL OR epoch < $1) FOR UPDATE`, res.To)
	res.Resealed += n
	if err != nil {
		return res, err
	}
	if err := tx.Commit(ctx); err != nil {
		return res, dbError("key store: retire epoch", err)
	}
	res.Rotated = true
	if err := ks.loadEpochs(ctx); err != nil {
		return res, err
	}
	res.PurgeErr = purgeEpochs(ctx, conn)
	return res, nil
}

// resealPage re-seals up to pageSize live keys after (lastT, lastS) that
// are not under epoch to yet, each update conditional on the row being
// unchanged since it was read.
func (ks *KeyStore) resealPage(ctx context.Context, conn *pgxpool.Conn, to int64, lastT, lastS []byte) (n int, last [2][]byte, more bool, err error) {
	q := `SELECT tenant_id, subject_id, wrapped, epoch FROM subject_keys
		WHERE NOT shredded AND (epoch IS NULL OR epoch < $1) ORDER BY tenant_id, subject_id LIMIT 1000`
	args := []any{to}
	if lastT != nil {
		q = `SELECT tenant_id, subject_id, wrapped, epoch FROM subject_keys
		WHERE (tenant_id, subject_id) > ($2, $3) AND NOT shredded AND (epoch IS NULL OR epoch < $1) ORDER BY tenant_id, subject_id LIMIT 1000`
		args = append(args, lastT, lastS)
	}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return 0, last, false, dbError("key store: re-seal subject keys", err)
	}
	b, count, err := ks.resealBatch(rows, to, &last)
	if err != nil {
		return 0, last, false, err
	}
	if count == 0 {
		return 0, last, false, nil
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, last, false, dbError("key store: re-seal subject keys", err)
	}
	return count, last, count == 1000, nil
}

// resealRows re-seals every row q returns, on tx.
func (ks *KeyStore) resealRows(ctx context.Context, tx pgx.Tx, to int64, q string, args ...any) (int, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return 0, dbError("key store: re-seal subject keys", err)
	}
	var last [2][]byte
	b, count, err := ks.resealBatch(rows, to, &last)
	if err != nil || count == 0 {
		return 0, err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, dbError("key store: re-seal subject keys", err)
	}
	return count, nil
}

// resealBatch reads rows (tenant, subject, stored, epoch) and queues their
// conditional re-sealing under epoch to; last is set to the last key read.
func (ks *KeyStore) resealBatch(rows pgx.Rows, to int64, last *[2][]byte) (*pgx.Batch, int, error) {
	defer rows.Close()
	toKey, ok := ks.epochKey(to)
	if !ok {
		return nil, 0, fmt.Errorf("key store: re-seal under epoch %d, which this node does not know", to)
	}
	b := &pgx.Batch{}
	count := 0
	for rows.Next() {
		var tb, sb, stored []byte
		var e *int64
		if err := rows.Scan(&tb, &sb, &stored, &e); err != nil {
			return nil, 0, dbError("key store: re-seal subject keys", err)
		}
		t, err1 := id16(tb, "tenant key id")
		s, err2 := id16(sb, "subject key id")
		if err := errors.Join(err1, err2); err != nil {
			return nil, 0, fmt.Errorf("key store: %w", err)
		}
		tid, sid := custos.TenantID(t), custos.SubjectID(s)
		w, ok, err := ks.unseal(tid, sid, e, stored)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			return nil, 0, fmt.Errorf("key store: subject key %s/%s is under epoch %d, which this node does not know", tid, sid, *e)
		}
		b.Queue(`UPDATE subject_keys SET wrapped = $3, epoch = $4
			WHERE tenant_id = $1 AND subject_id = $2 AND NOT shredded AND epoch IS NOT DISTINCT FROM $5 AND wrapped = $6`,
			tb, sb, sealWith(toKey, adSubject(tid, sid), w), to, e, stored)
		last[0], last[1] = tb, sb
		count++
	}
	if err := rows.Err(); err != nil {
		return nil, 0, dbError("key store: re-seal subject keys", err)
	}
	return b, count, nil
}

// purgeEpochs removes the bytes of retired epoch keys and re-sealed
// subject keys from the cluster's files: VACUUM subject_keys, VACUUM FULL
// key_epochs (a new file holding only the live epoch; the old one is
// truncated), then CHECKPOINT, pg_switch_wal() and CHECKPOINT again, so
// that every WAL segment written before is behind the redo point and
// removed (or recycled) by the checkpoint, as far as wal_keep_size,
// replication slots and archiving allow.
func purgeEpochs(ctx context.Context, conn *pgxpool.Conn) error {
	var errs []string
	for _, q := range []string{"VACUUM subject_keys", "VACUUM FULL key_epochs", "CHECKPOINT", "SELECT pg_switch_wal()", "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42501" { // insufficient privilege
				errs = append(errs, q+": "+pe.Message)
				continue
			}
			return dbError("key store: purge retired epochs: "+q, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("key store: the purge after the epoch rotation lacked privileges (%s): the retired epoch key waits for autovacuum and the server's checkpoints", strings.Join(errs, "; "))
	}
	return nil
}

// Rewrap re-seals the epoch keys under a key derived from newMaster, in
// one transaction (custos keys rotate-master, after the tenant keys). It
// does nothing if they are sealed under newMaster already.
func (ks *KeyStore) Rewrap(ctx context.Context, newMaster []byte) error {
	kek, err := kekFor(newMaster)
	if err != nil {
		return err
	}
	tx, err := ks.pool.Begin(ctx)
	if err != nil {
		return dbError("key store: re-wrap epochs", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, "SELECT epoch, wrapped FROM key_epochs ORDER BY epoch FOR UPDATE")
	if err != nil {
		return dbError("key store: re-wrap epochs", err)
	}
	type row struct {
		e int64
		w []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.e, &r.w); err != nil {
			rows.Close()
			return dbError("key store: re-wrap epochs", err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return dbError("key store: re-wrap epochs", err)
	}
	ks.ep.mu.RLock()
	old := ks.ep.kek
	ks.ep.mu.RUnlock()
	for _, r := range rs {
		if _, err := openWith(kek, adEpoch(r.e), r.w); err == nil {
			continue
		}
		k, err := openWith(old, adEpoch(r.e), r.w)
		if err != nil {
			return fmt.Errorf("key store: epoch %d: %w", r.e, ErrEpochMaster)
		}
		if _, err := tx.Exec(ctx, "UPDATE key_epochs SET wrapped = $2 WHERE epoch = $1", r.e, sealWith(kek, adEpoch(r.e), k)); err != nil {
			return dbError("key store: re-wrap epochs", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return dbError("key store: re-wrap epochs", err)
	}
	ks.ep.mu.Lock()
	ks.ep.kek = kek
	ks.ep.mu.Unlock()
	return nil
}

// EpochRotator rotates the key epoch of a KeyStore every Period, checking
// every Period/10 (at least every second, at most every 10 minutes) and
// reloading the epochs other nodes made. Every node runs one; the
// database's advisory lock and the epoch's creation time make one of them
// rotate once per period.
type EpochRotator struct {
	Keys   *KeyStore
	Period time.Duration
	Log    *slog.Logger
}

// Run rotates until ctx is done.
func (r EpochRotator) Run(ctx context.Context) error {
	every := min(max(r.Period/10, time.Second), 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		start := time.Now()
		res, err := r.Keys.Rotate(ctx, r.Period)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.Log.Error("key epoch rotation failed; it is retried", "err", err)
		case res.Rotated:
			r.Log.Info("key epoch rotated", "from", res.From, "to", res.To, "resealed", res.Resealed, "took", time.Since(start).Round(time.Millisecond))
			if res.PurgeErr != nil {
				r.Log.Warn("key epoch purge incomplete", "err", res.PurgeErr)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
