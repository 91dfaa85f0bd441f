package memory

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/motorpool/motorpool/storage"
)

// DefaultCacheMaxEntries bounds a Cache whose CacheConfig.MaxEntries is zero.
const DefaultCacheMaxEntries = 10000

// CacheConfig configures NewCache. The zero value is usable.
type CacheConfig struct {
	// MaxEntries bounds how many entries (values and family versions) are kept; beyond it the
	// least recently used is evicted (REDIS_CACHE_MAX). DefaultCacheMaxEntries when zero.
	MaxEntries int
	// Observer, when set, hears of hits, misses, fills, stale sets, invalidations and evictions.
	Observer storage.CacheObserver
	// Now is the clock TTLs follow (time.Now when nil).
	Now func() time.Time
}

// Cache is storage.Cache in process memory: an LRU list bounded by MaxEntries, each value with
// a deadline on the injected clock. Every hit is SourceLocal.
//
// No stale set: a miss registers a flight for its key (the in-process lease) and later misses
// on the key wait for it (single-flight). Invalidate detaches the key's flight and marks it
// stale, under the same mutex, so the flight's value is not stored and no Get that starts
// after Invalidate joins it. Family versions come from one sequence shared by all families,
// so a version evicted and created again is above every version handed out before.
type Cache struct {
	now func() time.Time
	obs storage.CacheObserver
	max int

	mu      sync.Mutex
	ll      *list.List // of *cacheEntry, most recently used first
	items   map[cacheKey]*list.Element
	flights map[string]*cacheFlight
	seq     int64 // the last family version handed out
	closed  bool
}

var _ storage.Cache = (*Cache)(nil)

// cacheKey keeps family versions apart from values, which may share a name.
type cacheKey struct {
	name    string
	version bool
}

type cacheEntry struct {
	key      cacheKey
	value    []byte
	version  int64
	deadline time.Time // zero for versions, which do not expire
}

// cacheFlight is one fill in progress; waiters read val and err after done is closed.
type cacheFlight struct {
	done  chan struct{}
	val   []byte
	err   error
	stale bool // an Invalidate overtook it: its value is not stored
}

// errCacheClosed is what calls after Close fail with.
var errCacheClosed = fmt.Errorf("memory: cache closed: %w", storage.ErrCacheUnavailable)

// NewCache returns an empty cache configured by cfg.
func NewCache(cfg CacheConfig) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultCacheMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{
		now:     cfg.Now,
		obs:     cfg.Observer,
		max:     cfg.MaxEntries,
		ll:      list.New(),
		items:   make(map[cacheKey]*list.Element),
		flights: make(map[string]*cacheFlight),
	}
}

func (c *Cache) observe(ev storage.CacheEvent, key string, err error) {
	if c.obs != nil {
		c.obs.ObserveCache(ev, key, err)
	}
}

// lookup returns the live entry at k, marking it most recently used; c.mu is held.
func (c *Cache) lookup(k cacheKey) *cacheEntry {
	el := c.items[k]
	if el == nil {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !e.deadline.IsZero() && !c.now().Before(e.deadline) {
		c.ll.Remove(el)
		delete(c.items, k)
		return nil
	}
	c.ll.MoveToFront(el)
	return e
}

// store puts e in front, evicting the least recently used beyond the bound; c.mu is held. It
// returns the keys evicted, to be observed after the lock is released.
func (c *Cache) store(e *cacheEntry) (evicted []string) {
	if el := c.items[e.key]; el != nil {
		el.Value = e
		c.ll.MoveToFront(el)
	} else {
		c.items[e.key] = c.ll.PushFront(e)
	}
	for c.ll.Len() > c.max {
		el := c.ll.Back()
		old := el.Value.(*cacheEntry)
		c.ll.Remove(el)
		delete(c.items, old.key)
		evicted = append(evicted, old.key.name)
	}
	return evicted
}

// Get implements storage.Cache.
func (c *Cache) Get(ctx context.Context, key string, ttl time.Duration, fill storage.FillFunc) ([]byte, storage.Source, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			c.observe(storage.CacheError, key, errCacheClosed)
			v, _, err := fill(ctx)
			return v, storage.SourceBypass, err
		}
		if e := c.lookup(cacheKey{name: key}); e != nil {
			c.mu.Unlock()
			c.observe(storage.CacheHitLocal, key, nil)
			return e.value, storage.SourceLocal, nil
		}
		if f := c.flights[key]; f != nil {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, 0, ctx.Err()
			}
			// The leader's own context ending is no reason for this call to fail: try again.
			if isContextErr(f.err) && ctx.Err() == nil {
				continue
			}
			return f.val, storage.SourceShared, f.err
		}
		f := &cacheFlight{done: make(chan struct{})}
		c.flights[key] = f
		c.mu.Unlock()
		c.observe(storage.CacheMiss, key, nil)
		return c.runFill(ctx, key, ttl, fill, f)
	}
}

func (c *Cache) runFill(ctx context.Context, key string, ttl time.Duration, fill storage.FillFunc, f *cacheFlight) (val []byte, src storage.Source, err error) {
	finished := false
	defer func() {
		if !finished { // fill panicked: let the waiters go, with an error
			c.mu.Lock()
			if c.flights[key] == f {
				delete(c.flights, key)
			}
			f.err = errors.New("memory: cache fill panicked")
			close(f.done)
			c.mu.Unlock()
		}
	}()
	val, fttl, err := fill(ctx)
	finished = true
	if fttl <= 0 {
		fttl = ttl
	}

	c.mu.Lock()
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	stale := f.stale
	var evicted []string
	if err == nil && !stale && !c.closed {
		evicted = c.store(&cacheEntry{key: cacheKey{name: key}, value: val, deadline: c.now().Add(storage.Jitter(fttl))})
	}
	f.val, f.err = val, err
	close(f.done)
	c.mu.Unlock()

	for _, k := range evicted {
		c.observe(storage.CacheEvict, k, nil)
	}
	if err != nil {
		return nil, storage.SourceFill, err
	}
	if stale {
		c.observe(storage.CacheStaleSet, key, nil)
	} else {
		c.observe(storage.CacheFill, key, nil)
	}
	return val, storage.SourceFill, nil
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// GetMulti implements storage.Cache.
func (c *Cache) GetMulti(ctx context.Context, keys []string, ttl time.Duration, fill storage.FillMultiFunc) ([][]byte, error) {
	values := make([][]byte, len(keys))
	var (
		owned   []string
		idx     []int
		flights []*cacheFlight
	)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errCacheClosed
	}
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		if e := c.lookup(cacheKey{name: k}); e != nil {
			values[i] = e.value
			continue
		}
		if fill == nil || c.flights[k] != nil || seen[k] {
			continue
		}
		seen[k] = true
		f := &cacheFlight{done: make(chan struct{})}
		c.flights[k] = f
		owned, idx, flights = append(owned, k), append(idx, i), append(flights, f)
	}
	c.mu.Unlock()
	for i, k := range keys {
		if values[i] != nil {
			c.observe(storage.CacheHitLocal, k, nil)
		} else {
			c.observe(storage.CacheMiss, k, nil)
		}
	}
	if len(owned) == 0 {
		return values, nil
	}

	var (
		vals [][]byte
		err  = errors.New("memory: cache fill panicked")
	)
	defer func() {
		var evicted []string
		var stored, stale []string
		c.mu.Lock()
		for j, k := range owned {
			f := flights[j]
			if c.flights[k] == f {
				delete(c.flights, k)
			}
			if err == nil && vals[j] != nil {
				if f.stale {
					stale = append(stale, k)
				} else if !c.closed {
					evicted = append(evicted, c.store(&cacheEntry{key: cacheKey{name: k}, value: vals[j], deadline: c.now().Add(storage.Jitter(ttl))})...)
					stored = append(stored, k)
				}
			}
			if err == nil {
				f.val = vals[j]
			}
			f.err = err
			close(f.done)
		}
		c.mu.Unlock()
		for _, k := range evicted {
			c.observe(storage.CacheEvict, k, nil)
		}
		for _, k := range stored {
			c.observe(storage.CacheFill, k, nil)
		}
		for _, k := range stale {
			c.observe(storage.CacheStaleSet, k, nil)
		}
	}()
	vals, err = fill(ctx, owned)
	if err == nil && len(vals) != len(owned) {
		err = fmt.Errorf("memory: cache fill returned %d values for %d keys", len(vals), len(owned))
	}
	if err != nil {
		return nil, err
	}
	for j, i := range idx {
		values[i] = vals[j]
	}
	return values, nil
}

// Version implements storage.Cache.
func (c *Cache) Version(ctx context.Context, family string) (int64, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, errCacheClosed
	}
	if e := c.lookup(cacheKey{name: family, version: true}); e != nil {
		c.mu.Unlock()
		return e.version, nil
	}
	c.seq++
	v := c.seq
	evicted := c.store(&cacheEntry{key: cacheKey{name: family, version: true}, version: v})
	c.mu.Unlock()
	for _, k := range evicted {
		c.observe(storage.CacheEvict, k, nil)
	}
	return v, nil
}

// Invalidate implements storage.Cache. It is atomic: no Get sees some of its effects and not
// others.
func (c *Cache) Invalidate(ctx context.Context, keys []string, families []string) error {
	var evicted []string
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errCacheClosed
	}
	for _, k := range keys {
		ck := cacheKey{name: k}
		if el := c.items[ck]; el != nil {
			c.ll.Remove(el)
			delete(c.items, ck)
		}
		if f := c.flights[k]; f != nil {
			f.stale = true
			delete(c.flights, k)
		}
	}
	for _, fam := range families {
		c.seq++
		evicted = append(evicted, c.store(&cacheEntry{key: cacheKey{name: fam, version: true}, version: c.seq})...)
	}
	c.mu.Unlock()
	for _, k := range evicted {
		c.observe(storage.CacheEvict, k, nil)
	}
	for _, k := range keys {
		c.observe(storage.CacheInvalidate, k, nil)
	}
	for _, f := range families {
		c.observe(storage.CacheInvalidate, f, nil)
	}
	return nil
}

// Ping implements storage.Cache.
func (c *Cache) Ping(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errCacheClosed
	}
	return nil
}

// Close implements storage.Cache: it drops every entry; later calls fail (Get bypasses).
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.ll.Init()
	clear(c.items)
	return nil
}
