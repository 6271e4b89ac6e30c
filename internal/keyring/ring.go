package keyring

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/custos-dev/custos"
)

// Options configures a Ring.
type Options struct {
	// CacheSize bounds how many unwrapped subject keys are kept in memory
	// (about 1 KiB each). Zero means 250 000.
	CacheSize int
	// InsecurePlaintext makes subject keys seal by copying: records keep
	// their format (version, nonce, tag-sized padding) but are not
	// encrypted. It exists only so benchmarks can measure what encryption
	// costs in the same run; custos serve never sets it.
	InsecurePlaintext bool
}

// DefaultCacheSize is the number of subject keys cached when
// Options.CacheSize is zero.
const DefaultCacheSize = 250_000

// Ring holds the unwrapped tenant keys and a cache of subject keys, and
// seals, opens and shreds data with them. It is safe for concurrent use.
//
// A Ring assumes it is the only writer of its key store's tenant keys;
// RotateMaster must run while no Ring has the store open.
type Ring struct {
	ks        custos.KeyStore
	master    cipher.AEAD
	plaintext bool // Options.InsecurePlaintext

	// tenants is replaced, never changed, so the hot paths read it without
	// a lock; tenantMu serialises the replacements.
	tenants  atomic.Pointer[map[custos.TenantID]*tenant]
	tenantMu sync.Mutex

	// operator hashes what concerns no tenant (HashValue under
	// custos.OperatorChain): its key derives from the master key, so every
	// node of a deployment computes the same pseudonyms.
	operator *tenant

	cache *cache
	// stripes serialise, per subject, loading or creating a key with
	// shredding it, so a key read before a shred is never cached after it
	// and two callers never create two keys for one subject.
	stripes [256]sync.Mutex

	adPool sync.Pool // of *[]byte, scratch for associated data
}

// tenant is one tenant's unwrapped keys. A deleted tenant keeps an entry
// with deleted set and no keys.
type tenant struct {
	id      custos.TenantID
	deleted atomic.Bool
	wrap    cipher.AEAD // wraps subject keys
	seal    cipher.AEAD // seals tenant-level records (the outbox)
	hashKey []byte      // identifier-hash key
	hashers sync.Pool   // of *hasher, keyed with hashKey
}

// HKDF info strings: each derived key has one purpose.
const (
	infoSubjectWrap = "custos keyring v1 subject key wrap"
	infoHash        = "custos keyring v1 identifier hash"
	infoTenantSeal  = "custos keyring v1 tenant seal"
	infoOperator    = "custos keyring v1 operator key"
)

// New opens a Ring over ks with the master key. On a new key store it
// records a check value sealed with master; on an existing one it refuses
// a master key that does not open that value (ErrWrongMasterKey). It
// unwraps every tenant key, and finishes tenant deletions a crash
// interrupted.
func New(ctx context.Context, ks custos.KeyStore, master []byte, opts Options) (*Ring, error) {
	if opts.CacheSize < 0 {
		return nil, fmt.Errorf("keyring: cache size %d is negative", opts.CacheSize)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if len(master) != keySize {
		return nil, fmt.Errorf("keyring: master key is %d bytes, want %d", len(master), keySize)
	}
	m, err := newAEAD(master)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	r := &Ring{ks: ks, master: m, cache: newCache(opts.CacheSize), plaintext: opts.InsecurePlaintext}
	opKey, err := hkdf.Key(sha256.New, master, nil, infoOperator, keySize)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if r.operator, err = newTenant(custos.OperatorChain, opKey); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	r.adPool.New = func() any { b := make([]byte, 0, 128); return &b }

	wrapped, err := ks.TenantKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	ok, found, err := checkMaster(ctx, ks, m)
	switch {
	case err != nil:
		return nil, fmt.Errorf("keyring: %w", err)
	case found && !ok:
		return nil, ErrWrongMasterKey
	case !found:
		// A new store, or one written before the check existed: every
		// tenant key must open before the check vouches for the master key.
		for t, w := range wrapped {
			if _, err := open(m, nil, adTenantKey(t), w); err != nil {
				return nil, ErrWrongMasterKey
			}
		}
		if err := ks.PutTenantKeys(ctx, nil, map[string][]byte{metaMasterCheck: sealMasterCheck(m)}); err != nil {
			return nil, fmt.Errorf("keyring: record master check: %w", err)
		}
	}

	deleted, err := r.deletedTenants(ctx)
	if err != nil {
		return nil, err
	}
	tenants := make(map[custos.TenantID]*tenant, len(wrapped)+len(deleted))
	for _, t := range deleted {
		tenants[t] = deletedTenant(t)
		if _, ok := wrapped[t]; ok {
			if err := ks.DeleteTenantKey(ctx, t); err != nil {
				return nil, fmt.Errorf("keyring: finish deleting tenant %s: %w", t, err)
			}
		}
	}
	for t, w := range wrapped {
		if tenants[t] != nil {
			continue
		}
		key, err := open(m, nil, adTenantKey(t), w)
		if err != nil {
			return nil, fmt.Errorf("keyring: tenant %s: key does not open under the master key: %w", t, err)
		}
		tk, err := newTenant(t, key)
		if err != nil {
			return nil, fmt.Errorf("keyring: tenant %s: %w", t, err)
		}
		tenants[t] = tk
	}
	r.tenants.Store(&tenants)
	return r, nil
}

// newTenant derives a tenant's working keys from its tenant key.
func newTenant(t custos.TenantID, key []byte) (*tenant, error) {
	wrapKey, err := hkdf.Key(sha256.New, key, nil, infoSubjectWrap, keySize)
	if err != nil {
		return nil, err
	}
	hashKey, err := hkdf.Key(sha256.New, key, nil, infoHash, keySize)
	if err != nil {
		return nil, err
	}
	wrap, err := newAEAD(wrapKey)
	if err != nil {
		return nil, err
	}
	sealKey, err := hkdf.Key(sha256.New, key, nil, infoTenantSeal, keySize)
	if err != nil {
		return nil, err
	}
	sealer, err := newAEAD(sealKey)
	if err != nil {
		return nil, err
	}
	tk := &tenant{id: t, wrap: wrap, seal: sealer, hashKey: hashKey}
	tk.hashers.New = func() any { return newHasher(tk.hashKey) }
	return tk, nil
}

func deletedTenant(t custos.TenantID) *tenant {
	tk := &tenant{id: t}
	tk.deleted.Store(true)
	return tk
}

// deletedTenants reads the list of deleted tenants.
func (r *Ring) deletedTenants(ctx context.Context) ([]custos.TenantID, error) {
	b, err := r.ks.Meta(ctx, metaDeletedTenants)
	if custos.ErrorCode(err) == custos.NotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keyring: read deleted tenants: %w", err)
	}
	if len(b)%len(custos.TenantID{}) != 0 {
		return nil, fmt.Errorf("keyring: deleted tenants record is %d bytes, not a multiple of 16", len(b))
	}
	ids := make([]custos.TenantID, len(b)/16)
	for i := range ids {
		copy(ids[i][:], b[16*i:])
	}
	return ids, nil
}

// tenant returns the keys of t: ErrShredded if it was deleted, a NotFound
// error if it has none.
func (r *Ring) tenant(t custos.TenantID) (*tenant, error) {
	tk := (*r.tenants.Load())[t]
	if tk == nil {
		return nil, &custos.Error{Code: custos.NotFound, Message: "tenant has no encryption key", Err: fmt.Errorf("tenant %s", t)}
	}
	if tk.deleted.Load() {
		return nil, custos.ErrShredded
	}
	return tk, nil
}

// setTenant publishes a new tenants map with t set to tk. The caller holds
// tenantMu.
func (r *Ring) setTenant(t custos.TenantID, tk *tenant) {
	old := *r.tenants.Load()
	m := make(map[custos.TenantID]*tenant, len(old)+1)
	for id, v := range old {
		m[id] = v
	}
	m[t] = tk
	r.tenants.Store(&m)
}

// CreateTenant creates t's tenant key, durably. It does nothing if t has
// one; a deleted tenant cannot be created again (custos.Gone).
func (r *Ring) CreateTenant(ctx context.Context, t custos.TenantID) error {
	r.tenantMu.Lock()
	defer r.tenantMu.Unlock()
	if tk := (*r.tenants.Load())[t]; tk != nil {
		if tk.deleted.Load() {
			return &custos.Error{Code: custos.Gone, Message: "tenant was deleted; its keys are destroyed"}
		}
		return nil
	}
	key := newKey()
	tk, err := newTenant(t, key)
	if err != nil {
		return fmt.Errorf("create tenant key %s: %w", t, err)
	}
	w := seal(r.master, nil, adTenantKey(t), key)
	if err := r.ks.PutTenantKeys(ctx, map[custos.TenantID][]byte{t: w}, nil); err != nil {
		return fmt.Errorf("create tenant key %s: %w", t, err)
	}
	r.setTenant(t, tk)
	return nil
}

// DeleteTenant destroys t's tenant key, durably: every record of every
// subject of t becomes unreadable at once, and later calls for t answer
// custos.ErrShredded. Deleting a deleted tenant does nothing.
func (r *Ring) DeleteTenant(ctx context.Context, t custos.TenantID) error {
	r.tenantMu.Lock()
	defer r.tenantMu.Unlock()
	tk := (*r.tenants.Load())[t]
	if tk == nil {
		return &custos.Error{Code: custos.NotFound, Message: "tenant has no encryption key", Err: fmt.Errorf("tenant %s", t)}
	}
	if tk.deleted.Load() {
		return nil
	}
	// Record the deletion first: if the process dies before the key is
	// destroyed, New finishes the job instead of reviving the tenant.
	deleted, err := r.deletedTenants(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(deleted, t) {
		rec := make([]byte, 0, 16*(len(deleted)+1))
		for _, id := range append(deleted, t) {
			rec = append(rec, id[:]...)
		}
		if err := r.ks.PutTenantKeys(ctx, nil, map[string][]byte{metaDeletedTenants: rec}); err != nil {
			return fmt.Errorf("delete tenant %s: %w", t, err)
		}
	}
	tk.deleted.Store(true) // before evicting: see cache.add
	r.setTenant(t, deletedTenant(t))
	r.cache.removeTenant(t)
	if err := r.ks.DeleteTenantKey(ctx, t); err != nil {
		return fmt.Errorf("delete tenant %s: %w", t, err)
	}
	return nil
}

// stripe returns the lock that serialises key changes of one subject.
func (r *Ring) stripe(k cacheKey) *sync.Mutex {
	return &r.stripes[k.hash()%uint64(len(r.stripes))]
}

func (k cacheKey) hash() uint64 {
	h := binary.LittleEndian.Uint64(k.s[:8]) ^ binary.LittleEndian.Uint64(k.t[:8])
	h ^= binary.LittleEndian.Uint64(k.s[8:]) * 0x9e3779b97f4a7c15
	return (h ^ h>>31) * 0xbf58476d1ce4e5b9 >> 16
}
