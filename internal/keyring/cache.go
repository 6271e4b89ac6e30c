package keyring

import (
	"sync"

	"github.com/custos-dev/custos"
)

// cache is a bounded LRU of unwrapped subject keys, split into shards
// each with its own lock so that concurrent lookups rarely contend. Each
// shard holds at most its share of the bound, so the whole never exceeds
// it. It only ever holds keys that were successfully unwrapped or created:
// a missing or shredded key is never cached.
type cache struct {
	shards []cacheShard
}

type cacheKey struct {
	t custos.TenantID
	s custos.SubjectID
}

type cacheShard struct {
	mu   sync.Mutex
	max  int
	m    map[cacheKey]*cacheEntry
	head cacheEntry // sentinel: head.next is the most recently used
	_    [64]byte   // keep shards' locks on separate cache lines
}

type cacheEntry struct {
	key        cacheKey
	k          *SubjectKey
	prev, next *cacheEntry
}

// newCache returns a cache of at most size keys (size > 0).
func newCache(size int) *cache {
	// As many shards as fit up to 64, each holding at least 64 keys.
	n := 1
	for n < 64 && size/(2*n) >= 64 {
		n *= 2
	}
	c := &cache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.max = size / n
		if i < size%n {
			sh.max++
		}
		sh.m = make(map[cacheKey]*cacheEntry)
		sh.head.next, sh.head.prev = &sh.head, &sh.head
	}
	return c
}

func (c *cache) shard(k cacheKey) *cacheShard {
	return &c.shards[k.hash()%uint64(len(c.shards))]
}

// get returns the cached key, or nil.
func (c *cache) get(key cacheKey) *SubjectKey {
	sh := c.shard(key)
	sh.mu.Lock()
	e := sh.m[key]
	if e == nil {
		sh.mu.Unlock()
		return nil
	}
	if sh.head.next != e {
		e.unlink()
		sh.pushFront(e)
	}
	k := e.k
	sh.mu.Unlock()
	return k
}

// add caches k, evicting the least recently used key of its shard if the
// shard is full. It does nothing if k's tenant was deleted: DeleteTenant
// marks the tenant before it evicts, so a key loaded concurrently with the
// deletion is never left behind.
func (c *cache) add(key cacheKey, k *SubjectKey, tk *tenant) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if tk.deleted.Load() {
		return
	}
	if e := sh.m[key]; e != nil {
		e.k = k
		e.unlink()
		sh.pushFront(e)
		return
	}
	e := &cacheEntry{key: key, k: k}
	sh.m[key] = e
	sh.pushFront(e)
	if len(sh.m) > sh.max {
		old := sh.head.prev
		old.unlink()
		delete(sh.m, old.key)
	}
}

// remove evicts key and returns the key it held, or nil. If only is not
// nil, it evicts only that key.
func (c *cache) remove(key cacheKey, only *SubjectKey) *SubjectKey {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[key]
	if e == nil || (only != nil && e.k != only) {
		return nil
	}
	e.unlink()
	delete(sh.m, key)
	return e.k
}

// removeTenant evicts every key of t and marks each destroyed.
func (c *cache) removeTenant(t custos.TenantID) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for key, e := range sh.m {
			if key.t == t {
				e.unlink()
				delete(sh.m, key)
				e.k.destroyed.Store(true)
			}
		}
		sh.mu.Unlock()
	}
}

// removeAll evicts every key. The keys stay usable by whoever holds
// them (they are not destroyed): the next lookup reads the key store.
func (c *cache) removeAll() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for key, e := range sh.m {
			e.unlink()
			delete(sh.m, key)
		}
		sh.mu.Unlock()
	}
}

// len returns the number of cached keys.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (sh *cacheShard) pushFront(e *cacheEntry) {
	e.prev, e.next = &sh.head, sh.head.next
	sh.head.next.prev = e
	sh.head.next = e
}

func (e *cacheEntry) unlink() {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}
