package keyring

import (
	"context"
	"crypto/cipher"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/custos-dev/custos"
)

// SubjectKey is the unwrapped data key of one subject, ready to seal and
// open that subject's records. It is safe for concurrent use. Get one from
// Ring.SubjectKey; hold it for the records of one operation, not for long.
type SubjectKey struct {
	tenant  custos.TenantID
	subject custos.SubjectID
	aead    cipher.AEAD
	// destroyed is set when the ring shreds the key (or deletes its
	// tenant) while this value is cached, so holders fail from then on.
	destroyed atomic.Bool
	// durable waits until the key is in the key store for good.
	durable func() error
	adPool  *sync.Pool
}

// noWait is the wait of a key that is already durable.
func noWait() error { return nil }

// Tenant returns the tenant the key belongs to.
func (k *SubjectKey) Tenant() custos.TenantID { return k.tenant }

// Subject returns the subject the key belongs to.
func (k *SubjectKey) Subject() custos.SubjectID { return k.subject }

// ad appends the associated data of a record to dst: it binds the record
// to the format, tenant, subject and record key.
func (k *SubjectKey) ad(dst, recordKey []byte) []byte {
	dst = append(dst, formatVersion)
	dst = append(dst, k.tenant[:]...)
	dst = append(dst, k.subject[:]...)
	return append(dst, recordKey...)
}

// Seal encrypts plaintext as the record recordKey of the key's subject and
// appends the result, len(plaintext)+Overhead bytes, to dst. dst must not
// overlap plaintext. recordKey names the record (its key in the store):
// the sealed value opens only under the same tenant, subject and record
// key. Seal returns custos.ErrShredded if the key was shredded.
func (k *SubjectKey) Seal(dst, recordKey, plaintext []byte) ([]byte, error) {
	if k.destroyed.Load() {
		return nil, custos.ErrShredded
	}
	p := k.adPool.Get().(*[]byte)
	ad := k.ad((*p)[:0], recordKey)
	out := seal(k.aead, dst, ad, plaintext)
	k.putAD(p, ad)
	return out, nil
}

// Open decrypts a value made by Seal for recordKey and appends the
// plaintext to dst. It returns ErrTampered if the value was changed or
// sealed for another record, subject or key, and custos.ErrShredded if
// the key was shredded.
func (k *SubjectKey) Open(dst, recordKey, sealed []byte) ([]byte, error) {
	if k.destroyed.Load() {
		return nil, custos.ErrShredded
	}
	p := k.adPool.Get().(*[]byte)
	ad := k.ad((*p)[:0], recordKey)
	out, err := open(k.aead, dst, ad, sealed)
	k.putAD(p, ad)
	return out, err
}

// putAD returns scratch to the pool, unless one huge record key grew it.
func (k *SubjectKey) putAD(p *[]byte, ad []byte) {
	if cap(ad) <= maxPooledBuf {
		*p = ad
		k.adPool.Put(p)
	}
}

// adSubjectKey is the associated data of a wrapped subject key.
func adSubjectKey(t custos.TenantID, s custos.SubjectID) []byte {
	ad := make([]byte, 0, 1+len(t)+len(s))
	ad = append(ad, formatVersion)
	ad = append(ad, t[:]...)
	return append(ad, s[:]...)
}

// SubjectKey returns the data key of subject s of tenant t. If the subject
// has none and create is true, it makes one: the returned wait blocks until
// the new key is durable, so a caller can wait for it together with the
// write of the data it sealed (never acknowledge that data before wait
// returns). For a key already in the store, wait returns at once. Every
// caller of a key still being made gets the same wait.
//
// It returns custos.ErrNotFound if the subject has no key and create is
// false, and custos.ErrShredded if the key was shredded or the tenant
// deleted: a shredded subject is never given a new key (start a new
// subject id instead).
func (r *Ring) SubjectKey(ctx context.Context, t custos.TenantID, s custos.SubjectID, create bool) (k *SubjectKey, wait func() error, err error) {
	tk, err := r.tenant(t)
	if err != nil {
		return nil, nil, err
	}
	key := cacheKey{t, s}
	if k := r.cache.get(key); k != nil {
		return k, k.durable, nil
	}

	mu := r.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	if k := r.cache.get(key); k != nil { // loaded while we waited
		return k, k.durable, nil
	}
	wrapped, err := r.ks.SubjectKey(ctx, t, s)
	switch code := custos.ErrorCode(err); {
	case err == nil:
		// Found keys are taken as durable. The one exception: a key this
		// ring created and the cache evicted again before its sync finished
		// (the cache turning over within one WAL sync); its creators still
		// wait for it, later readers do not.
		raw, err := open(tk.wrap, nil, adSubjectKey(t, s), wrapped)
		if err != nil {
			return nil, nil, &custos.Error{Code: custos.Internal, Message: "subject key does not open under its tenant key",
				Err: fmt.Errorf("subject %s/%s: %w", t, s, err)}
		}
		k, err := r.newSubjectKey(t, s, raw, noWait)
		if err != nil {
			return nil, nil, err
		}
		r.cache.add(key, k, tk)
		return k, k.durable, nil
	case code == custos.Shredded:
		return nil, nil, custos.ErrShredded
	case code == custos.NotFound && !create:
		return nil, nil, custos.ErrNotFound
	case code != custos.NotFound:
		return nil, nil, fmt.Errorf("subject key %s/%s: %w", t, s, err)
	}

	raw := newKey()
	storeWait, err := r.ks.PutSubjectKey(ctx, t, s, seal(tk.wrap, nil, adSubjectKey(t, s), raw))
	if custos.ErrorCode(err) == custos.Shredded {
		return nil, nil, custos.ErrShredded
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create subject key %s/%s: %w", t, s, err)
	}
	var nk *SubjectKey
	durable := sync.OnceValue(func() error {
		err := storeWait()
		if err != nil {
			// Not durable: a crash could lose it, so nobody may seal with it.
			if r.cache.remove(key, nk) != nil {
				nk.destroyed.Store(true)
			}
		}
		return err
	})
	nk, err = r.newSubjectKey(t, s, raw, durable)
	if err != nil {
		return nil, nil, err
	}
	r.cache.add(key, nk, tk)
	return nk, nk.durable, nil
}

func (r *Ring) newSubjectKey(t custos.TenantID, s custos.SubjectID, raw []byte, durable func() error) (*SubjectKey, error) {
	newAEAD := newAEAD
	if r.plaintext {
		newAEAD = newPlainAEAD
	}
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, fmt.Errorf("subject key %s/%s: %w", t, s, err)
	}
	return &SubjectKey{tenant: t, subject: s, aead: aead, durable: durable, adPool: &r.adPool}, nil
}

// Seal encrypts plaintext as the record recordKey of subject s, making the
// subject's key if it has none; it returns once that key is durable. The
// ingest path, which waits for the key together with its own write, uses
// SubjectKey and SubjectKey.Seal instead.
func (r *Ring) Seal(ctx context.Context, t custos.TenantID, s custos.SubjectID, recordKey, plaintext []byte) ([]byte, error) {
	k, wait, err := r.SubjectKey(ctx, t, s, true)
	if err != nil {
		return nil, err
	}
	if err := wait(); err != nil {
		return nil, err
	}
	return k.Seal(nil, recordKey, plaintext)
}

// Open decrypts the record recordKey of subject s. It returns
// custos.ErrShredded once the subject was shredded or the tenant deleted,
// ErrTampered if the value fails authentication, and custos.ErrNotFound if
// the subject never had a key.
func (r *Ring) Open(ctx context.Context, t custos.TenantID, s custos.SubjectID, recordKey, sealed []byte) ([]byte, error) {
	k, _, err := r.SubjectKey(ctx, t, s, false)
	if err != nil {
		return nil, err
	}
	return k.Open(nil, recordKey, sealed)
}

// Shred destroys the key of subject s, durably, and drops it from memory:
// from then on every record of s ever sealed, in any copy of the data,
// opens as custos.ErrShredded, and the subject is never given a new key.
// Shredding a shredded subject, or one that never had a key, is allowed
// and leaves it shredded.
func (r *Ring) Shred(ctx context.Context, t custos.TenantID, s custos.SubjectID) error {
	if _, err := r.tenant(t); err != nil {
		if err == custos.ErrShredded {
			return nil // the tenant key, and with it every subject key, is gone
		}
		return err
	}
	key := cacheKey{t, s}
	mu := r.stripe(key)
	mu.Lock()
	defer mu.Unlock()
	if err := r.ks.ShredSubjectKey(ctx, t, s); err != nil {
		return fmt.Errorf("shred subject %s/%s: %w", t, s, err)
	}
	if k := r.cache.remove(key, nil); k != nil {
		k.destroyed.Store(true)
	}
	return nil
}

// SubjectKeys calls fn, in subject order, with the key of every subject of
// tenant t from from to to (both included) that has a live key, read in one
// ordered pass over the key store. Keys already cached are taken from the
// cache; those read are not added to it, so a walk over a whole tenant does
// not evict the keys ingestion is using.
func (r *Ring) SubjectKeys(ctx context.Context, t custos.TenantID, from, to custos.SubjectID, fn func(*SubjectKey) (bool, error)) error {
	tk, err := r.tenant(t)
	if err != nil {
		return err
	}
	return r.ks.SubjectKeys(ctx, t, from, to, func(s custos.SubjectID, wrapped []byte) (bool, error) {
		if k := r.cache.get(cacheKey{t, s}); k != nil {
			return fn(k)
		}
		raw, err := open(tk.wrap, nil, adSubjectKey(t, s), wrapped)
		if err != nil {
			return false, &custos.Error{Code: custos.Internal, Message: "subject key does not open under its tenant key",
				Err: fmt.Errorf("subject %s/%s: %w", t, s, err)}
		}
		k, err := r.newSubjectKey(t, s, raw, noWait)
		if err != nil {
			return false, err
		}
		return fn(k)
	})
}
