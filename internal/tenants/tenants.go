// Package tenants creates tenants and their API keys and answers which
// tenant an API key belongs to. Only SHA-256 digests of keys are stored;
// lookups compare digests in constant time.
package tenants

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/custos-dev/custos"
)

// Keys are a tenant's API keys in the clear, shown once when made.
type Keys struct {
	// WriteKey is public (it ships in apps) and can only ingest.
	WriteKey string `json:"write_key"`
	// SecretKey is for the tenant's servers: it reads and manages data.
	SecretKey string `json:"secret_key"`
	// IdentitySecret is the key with which the tenant's back end computes
	// user_hash = HMAC-SHA-256(IdentitySecret, userId), proving to
	// /v1/privacy that a device speaks for that user.
	IdentitySecret string `json:"identity_verification_secret"`
	// CallbackSecret is the key with which Custos signs the status
	// callbacks of the tenant's requests (X-Custos-Signature).
	CallbackSecret string `json:"callback_signing_secret"`
	// DeliverySecret is the key with which Custos signs the campaign
	// messages it POSTs to the tenant's delivery webhook.
	DeliverySecret string `json:"delivery_signing_secret"`
}

// KeyRing is what the registry needs of the encryption keyring: a tenant
// key made with the tenant.
type KeyRing interface {
	CreateTenant(ctx context.Context, t custos.TenantID) error
	DeleteTenant(ctx context.Context, t custos.TenantID) error
	HashValue(t custos.TenantID, domain string, v []byte) ([32]byte, error)
	SealTenant(t custos.TenantID, recordKey, plaintext []byte) ([]byte, error)
	OpenTenant(t custos.TenantID, recordKey, sealed []byte) ([]byte, error)
}

// Registry holds every tenant in memory, indexed by key digest.
type Registry struct {
	store  custos.TenantStore
	ring   KeyRing
	now    func() time.Time
	region string
	// urlHost, if set, is asked about the host of every destination a
	// settings patch names (URLHost).
	urlHost func(host string) error

	// usersMu orders the read-modify-writes of console users.
	usersMu sync.Mutex

	mu       sync.RWMutex
	byID     map[custos.TenantID]*custos.Tenant
	byWrite  map[[32]byte]*custos.Tenant
	bySecret map[[32]byte]*custos.Tenant
}

// Option configures a Registry.
type Option func(*Registry)

// URLHost makes the registry ask check about the host of every
// destination a settings patch sets (delivery_webhook.url,
// security_contact_url.url, smtp.host), so an internal address is refused
// when it is given (the outbound guard's CheckHost); calls are guarded
// again when made.
func URLHost(check func(host string) error) Option {
	return func(r *Registry) { r.urlHost = check }
}

// Load reads every tenant from store. region is the node's own region:
// tenants of other regions can be listed but not created here.
func Load(ctx context.Context, store custos.TenantStore, ring KeyRing, region string, now func() time.Time, opts ...Option) (*Registry, error) {
	r := &Registry{store: store, ring: ring, now: now, region: region}
	for _, o := range opts {
		o(r)
	}
	ts, err := store.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	r.index(ts)
	return r, nil
}

func (r *Registry) index(ts []*custos.Tenant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byID = map[custos.TenantID]*custos.Tenant{}
	r.byWrite = map[[32]byte]*custos.Tenant{}
	r.bySecret = map[[32]byte]*custos.Tenant{}
	for _, t := range ts {
		r.byID[t.ID] = t
		r.byWrite[t.WriteKeyHash] = t
		r.bySecret[t.SecretKeyHash] = t
	}
}

// Reload reads every tenant again from the store, for a store other nodes
// share: a tenant created, changed (keys rotated, settings) or deleted
// through another node is seen here from then on.
func (r *Registry) Reload(ctx context.Context) error { return r.reload(ctx) }

func (r *Registry) reload(ctx context.Context) error {
	ts, err := r.store.Tenants(ctx)
	if err != nil {
		return err
	}
	r.index(ts)
	return nil
}

// Create makes a tenant with fresh keys and a fresh encryption key.
func (r *Registry) Create(ctx context.Context, name, region string) (*custos.Tenant, Keys, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, Keys{}, custos.Errorf(custos.Invalid, "name is required")
	}
	if len(name) > 200 {
		return nil, Keys{}, custos.Errorf(custos.Invalid, "name is longer than 200 characters")
	}
	if region == "" {
		region = r.region
	}
	if !validRegion(region) {
		return nil, Keys{}, custos.Errorf(custos.Invalid, "region %q must be 1 to 32 lowercase letters, digits or dashes", region)
	}
	if region != r.region {
		return nil, Keys{}, custos.Errorf(custos.Misdirected, "this node serves region %q; create tenants of region %q on a node of that region", r.region, region)
	}
	t := &custos.Tenant{ID: custos.NewTenantID(), Name: name, Region: region, CreatedAt: r.now().UTC()}
	keys := newKeys(t)
	// The encryption key comes first: a tenant record without one would
	// accept data it cannot seal.
	if err := r.ring.CreateTenant(ctx, t.ID); err != nil {
		return nil, Keys{}, err
	}
	if err := r.fillSecrets(t, &keys); err != nil {
		return nil, Keys{}, err
	}
	if err := r.store.CreateTenant(ctx, t); err != nil {
		return nil, Keys{}, err
	}
	return t, keys, r.reload(ctx)
}

// Rotate gives a tenant new keys; the old ones stop working at once.
func (r *Registry) Rotate(ctx context.Context, id custos.TenantID) (*custos.Tenant, Keys, error) {
	t, err := r.store.Tenant(ctx, id)
	if err != nil {
		return nil, Keys{}, err
	}
	keys := newKeys(t)
	t.KeysRotatedAt = r.now().UTC()
	if err := r.fillSecrets(t, &keys); err != nil {
		return nil, Keys{}, err
	}
	if err := r.store.UpdateTenant(ctx, t); err != nil {
		return nil, Keys{}, err
	}
	return t, keys, r.reload(ctx)
}

// SetRateLimits replaces a tenant's own rate limits (nil or all zero: the
// node's). Only the operator may: a tenant must not raise its own.
func (r *Registry) SetRateLimits(ctx context.Context, id custos.TenantID, rl *custos.RateLimits) (*custos.Tenant, error) {
	if rl != nil {
		if err := rl.Validate(); err != nil {
			return nil, err
		}
		if *rl == (custos.RateLimits{}) {
			rl = nil
		}
	}
	t, err := r.store.Tenant(ctx, id)
	if err != nil {
		return nil, err
	}
	t.RateLimits = rl
	if err := r.store.UpdateTenant(ctx, t); err != nil {
		return nil, err
	}
	return t, r.reload(ctx)
}

// Delete removes a tenant for good. Its encryption key is destroyed
// first, so all its data — in the store, the WAL and every backup — is
// unreadable from that moment; then its records are deleted and purged.
func (r *Registry) Delete(ctx context.Context, id custos.TenantID) error {
	if _, ok := r.Get(id); !ok {
		return custos.Errorf(custos.NotFound, "no tenant %s", id)
	}
	if err := r.ring.DeleteTenant(ctx, id); err != nil {
		return fmt.Errorf("destroy tenant key: %w", err)
	}
	r.mu.Lock()
	t := r.byID[id]
	delete(r.byID, id)
	delete(r.byWrite, t.WriteKeyHash)
	delete(r.bySecret, t.SecretKeyHash)
	r.mu.Unlock()
	if err := r.store.DeleteTenant(ctx, id); err != nil {
		return fmt.Errorf("delete tenant records: %w", err)
	}
	return nil
}

// IdentitySecret returns the tenant's identity-verification secret. It is
// derived from the tenant's encryption key and the time its API keys were
// last rotated, so it is stored nowhere and rotates with the keys.
func (r *Registry) IdentitySecret(t *custos.Tenant) (string, error) {
	return r.derived(t, "identity-verification-secret", "iv_")
}

func (r *Registry) fillSecrets(t *custos.Tenant, k *Keys) error {
	var err error
	if k.IdentitySecret, err = r.IdentitySecret(t); err != nil {
		return err
	}
	if k.CallbackSecret, err = r.CallbackSecret(t); err != nil {
		return err
	}
	k.DeliverySecret, err = r.DeliverySecret(t)
	return err
}

// CallbackSecret returns the key that signs the tenant's request status
// callbacks; derived and rotated like IdentitySecret.
func (r *Registry) CallbackSecret(t *custos.Tenant) (string, error) {
	return r.derived(t, "callback-signing-secret", "cb_")
}

// DeliverySecret returns the key that signs campaign messages delivered
// to the tenant's webhook; derived and rotated like IdentitySecret.
func (r *Registry) DeliverySecret(t *custos.Tenant) (string, error) {
	return r.derived(t, "campaign-delivery-secret", "dw_")
}

func (r *Registry) derived(t *custos.Tenant, domain, prefix string) (string, error) {
	h, err := r.ring.HashValue(t.ID, domain, []byte(t.KeysRotatedAt.UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(h[:]), nil
}

// VerifyUserHash reports whether userHash is the hex HMAC-SHA-256 of
// userID under the tenant's identity-verification secret, in constant time.
func (r *Registry) VerifyUserHash(t *custos.Tenant, userID, userHash string) bool {
	secret, err := r.IdentitySecret(t)
	if err != nil || userID == "" || userHash == "" {
		return false
	}
	got, err := hex.DecodeString(userHash)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(userID))
	return hmac.Equal(got, mac.Sum(nil))
}

// Region returns the region this node serves.
func (r *Registry) Region() string { return r.region }

// Misdirected returns a Misdirected error if t belongs to another region
// than this node's: its data must be neither stored nor read here. Tenants
// of other regions exist in a shared tenant table or a restored store.
func (r *Registry) Misdirected(t *custos.Tenant) error {
	if t.Region == r.region {
		return nil
	}
	return custos.Errorf(custos.Misdirected, "tenant %s belongs to region %q and this node serves region %q: send its requests to a node of region %q", t.ID, t.Region, r.region, t.Region)
}

// Get returns a tenant by id.
func (r *Registry) Get(id custos.TenantID) (*custos.Tenant, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.byID[id]
	return t, ok
}

// List returns every tenant ordered by creation time.
func (r *Registry) List() []*custos.Tenant {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ts := make([]*custos.Tenant, 0, len(r.byID))
	for _, t := range r.byID {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *custos.Tenant) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return ts
}

// ByWriteKey returns the tenant a write key belongs to.
func (r *Registry) ByWriteKey(key string) (*custos.Tenant, bool) { return r.lookup(key, false) }

// BySecretKey returns the tenant a secret key belongs to.
func (r *Registry) BySecretKey(key string) (*custos.Tenant, bool) { return r.lookup(key, true) }

func (r *Registry) lookup(key string, secret bool) (*custos.Tenant, bool) {
	if key == "" {
		return nil, false
	}
	sum := sha256.Sum256([]byte(key))
	r.mu.RLock()
	index := r.byWrite
	if secret {
		index = r.bySecret
	}
	t, ok := index[sum]
	r.mu.RUnlock()
	if !ok {
		return nil, false
	}
	want := t.WriteKeyHash
	if secret {
		want = t.SecretKeyHash
	}
	return t, subtle.ConstantTimeCompare(want[:], sum[:]) == 1
}

func newKeys(t *custos.Tenant) Keys {
	k := Keys{WriteKey: "wk_" + randomToken(24), SecretKey: "sk_" + randomToken(32)}
	t.WriteKeyHash = sha256.Sum256([]byte(k.WriteKey))
	t.SecretKeyHash = sha256.Sum256([]byte(k.SecretKey))
	return k
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func validRegion(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
