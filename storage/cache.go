package storage

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"
)

// ErrCacheUnavailable: the cache could not be consulted (the server is unreachable or slow, or
// the circuit breaker is open after recent failures). Nothing was read or changed, or it is not
// known whether the change happened; the caller goes to the database instead and, for
// Invalidate, retries until it succeeds. Test with errors.Is.
var ErrCacheUnavailable = errors.New("cache unavailable")

// Source says where Cache.Get found the value it returned.
type Source int

// The sources of a value.
const (
	// SourceLocal: a hit in this process's memory (the memory backend, or the Valkey backend's
	// client-side tier); no round trip.
	SourceLocal Source = iota + 1
	// SourceRemote: a hit on the shared server, one round trip.
	SourceRemote
	// SourceFill: a miss; this call ran fill and the value was stored (unless an invalidation
	// overtook it, which the Observer hears of as CacheStaleSet).
	SourceFill
	// SourceShared: a miss; another caller's fill (in this process, or another instance holding
	// the key's lease) supplied the value, so this call ran no fill of its own.
	SourceShared
	// SourceBypass: the cache could not be used (unavailable, breaker open, or another instance's
	// lease outlived the wait); this call ran fill and nothing was stored.
	SourceBypass
)

func (s Source) String() string {
	switch s {
	case SourceLocal:
		return "local"
	case SourceRemote:
		return "remote"
	case SourceFill:
		return "fill"
	case SourceShared:
		return "shared"
	case SourceBypass:
		return "bypass"
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// Hit reports whether the value came from the cache without any fill.
func (s Source) Hit() bool { return s == SourceLocal || s == SourceRemote }

// FillFunc loads the value of a key that is not cached, typically the encoded response of a
// database read. It returns the bytes to cache and their TTL: 0 means the ttl given to Get, a
// shorter one suits negative entries (a "not found" marker cached for 30 s). An error is
// returned to Get's caller unchanged and nothing is stored.
type FillFunc func(ctx context.Context) (value []byte, ttl time.Duration, err error)

// FillMultiFunc loads the values of keys that are not cached, in one batch: values[i] is the
// value of keys[i], nil when there is none to cache. Every value gets GetMulti's ttl.
type FillMultiFunc func(ctx context.Context, keys []string) (values [][]byte, err error)

// Cache keeps encoded values (response bytes) under string keys, each with a TTL, and integer
// versions of key families. It is a cache-aside store with leases: values enter it only
// through a fill that no invalidation has overtaken, so a committed write is never undone by
// a slow reader ("no stale set"). Implementations are safe for concurrent use; every key lives
// under the backend's key prefix.
//
// Every TTL the backend stores gets ±10% jitter (uniform in [0.9·ttl, 1.1·ttl], see Jitter),
// so entries filled together do not expire together; callers pass the nominal TTL.
//
// Families: a family (users:all, vehicles:all, vehicles:user:{id}) names many entries, such
// as every page of a list. Its version is stored at the family's key; callers fold it into
// the entries' keys (FamilyKey) so that Invalidate bumping the version retires every entry of
// the family in O(1), and an entry of an old version is never read again (it expires by TTL).
// A version is never reused, even after its key is evicted or the server restarts.
//
// Read-your-own-writes: once Invalidate returns, no Get or Version in this process returns a
// value from before it, from any tier. Other processes (instances sharing a server) stop
// serving it as soon as the server's invalidation reaches them, normally within milliseconds.
type Cache interface {
	// Get returns the value cached at key. On a miss it runs fill, stores the result for its
	// TTL (ttl when fill returns 0) and returns it. Concurrent misses on one key run fill
	// once per process, and, on a shared server, once across processes: the first takes a
	// lease on the key and the others wait for its value (SourceShared), for a bounded time
	// after which they fill without storing (SourceBypass).
	//
	// A fill that started before an Invalidate of key does not store its value, and a Get
	// that starts after the Invalidate never receives it.
	//
	// When the cache is unavailable Get runs fill itself, within the backend's bounded timeout
	// (SourceBypass, the failure reported to the Observer), so a read never fails because of
	// the cache. The only errors are fill's own, unchanged, and ctx's.
	//
	// The returned bytes may be shared with the cache and other callers: do not modify them.
	Get(ctx context.Context, key string, ttl time.Duration, fill FillFunc) ([]byte, Source, error)

	// GetMulti returns the values at keys (values[i] for keys[i], nil for a miss), in one
	// round trip. When fill is not nil, the keys that missed and that no one else is filling
	// are filled in one call to fill and stored for ttl (with leases, as Get does), and their
	// values returned; the others stay nil. It is meant for warming the cache at start.
	// Errors: ErrCacheUnavailable (wrapped), or fill's error unchanged.
	GetMulti(ctx context.Context, keys []string, ttl time.Duration, fill FillMultiFunc) ([][]byte, error)

	// Version returns the current version of family, creating it when the family has none
	// (versions are positive and grow; a family created afresh gets a version above any it
	// had before). Errors: ErrCacheUnavailable (wrapped); the caller then bypasses the cache.
	Version(ctx context.Context, family string) (int64, error)

	// Invalidate deletes keys and bumps the version of each family, in one round trip, and
	// returns once this process can no longer serve their old values (see Read-your-own-
	// writes). Call it after the database commit. Deleting a key that is not cached is not
	// an error. Errors: ErrCacheUnavailable (wrapped) when the server could not confirm it;
	// some keys may have been invalidated and others not, so the caller retries the whole
	// call (it is idempotent in effect) and bypasses these keys until it succeeds.
	Invalidate(ctx context.Context, keys []string, families []string) error

	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// Close releases the backend; calls after Close fail.
	Close() error
}

// FamilyKey is the key of one entry of a family at a version: family + ":v" + version + ":" +
// rest, for example users:all:v7:limit=20:after=0.
func FamilyKey(family string, version int64, rest string) string {
	return family + ":v" + strconv.FormatInt(version, 10) + ":" + rest
}

// Jitter returns ttl scaled by a uniformly random factor in [0.9, 1.1], the spread every Cache
// applies to the TTLs it stores.
func Jitter(ttl time.Duration) time.Duration {
	return time.Duration(float64(ttl) * (0.9 + 0.2*rand.Float64()))
}

// CacheEvent is what a Cache reports to its CacheObserver.
type CacheEvent int

// The events, one per occurrence (per key where there is one).
const (
	CacheHitLocal     CacheEvent = iota + 1 // a value served from process memory
	CacheHitRemote                          // a value served from the shared server
	CacheMiss                               // a key was not cached (a fill or a wait follows)
	CacheFill                               // fill ran and its value was stored
	CacheStaleSet                           // fill ran but an invalidation overtook it: not stored
	CacheInvalidate                         // a key was deleted or a family's version bumped
	CacheError                              // the cache failed; err says how
	CacheBreakerOpen                        // the circuit breaker opened: calls fail fast for a while
	CacheBreakerClose                       // a probe succeeded: the breaker closed again
	CacheEvict                              // an entry was evicted to respect the size bound
)

func (e CacheEvent) String() string {
	switch e {
	case CacheHitLocal:
		return "hit_local"
	case CacheHitRemote:
		return "hit_remote"
	case CacheMiss:
		return "miss"
	case CacheFill:
		return "fill"
	case CacheStaleSet:
		return "stale_set"
	case CacheInvalidate:
		return "invalidate"
	case CacheError:
		return "error"
	case CacheBreakerOpen:
		return "breaker_open"
	case CacheBreakerClose:
		return "breaker_close"
	case CacheEvict:
		return "evict"
	}
	return "CacheEvent(" + strconv.Itoa(int(e)) + ")"
}

// CacheObserver hears of a Cache's events, for metrics. key is the caller's key or family
// (without the backend's prefix), empty for events of the whole backend; err is set for
// CacheError only. ObserveCache is called synchronously on hot paths, from many goroutines at
// once: it must be fast and safe for concurrent use.
type CacheObserver interface {
	ObserveCache(ev CacheEvent, key string, err error)
}

// CacheObserverFunc adapts a function to CacheObserver.
type CacheObserverFunc func(ev CacheEvent, key string, err error)

// ObserveCache calls f.
func (f CacheObserverFunc) ObserveCache(ev CacheEvent, key string, err error) { f(ev, key, err) }
