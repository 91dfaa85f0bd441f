package valkey

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/storage"
)

// Storage format of the cache (every key under the client's KeyPrefix):
//
//	{key}     a value: "v" + the bytes; PTTL: the jittered TTL.
//	          or a lease: "l" + token, while one caller fills the key; PTTL: LeaseTTL.
//	{family}  a family's version: a decimal integer, no TTL. Created at the current time in
//	          microseconds (SET NX) and bumped by INCR, so a family whose key was evicted or
//	          lost restarts above every version it had.
//
// The tag byte keeps leases and values apart whatever the bytes are.
const (
	tagValue = 'v'
	tagLease = 'l'
)

// Lua scripts for the lease's compare-and-set: Exec for one key (valkeygo.Lua falls back from
// EVALSHA to EVAL), execScripts for GetMulti's pipelines.
var (
	//go:embed lua/cache_set.lua
	cacheSetLua string
	//go:embed lua/cache_release.lua
	cacheReleaseLua string

	cacheSetScript     = newScript(cacheSetLua)
	cacheReleaseScript = newScript(cacheReleaseLua)
)

// Defaults for CacheOptions' zero values.
const (
	DefaultCacheTimeout         = 250 * time.Millisecond
	DefaultCacheLeaseTTL        = 5 * time.Second
	DefaultCacheLeaseWait       = time.Second
	DefaultCacheVersionTTL      = time.Minute
	DefaultCacheLocalBytes      = 64 << 20
	DefaultCacheBreakerFailures = 3
	DefaultCacheBreakerCooldown = 2 * time.Second
)

// CacheOptions tunes OpenCache. The zero value is usable.
type CacheOptions struct {
	// Timeout bounds each round trip of the cache (DefaultCacheTimeout when zero): a read that
	// takes longer falls through to the database.
	Timeout time.Duration
	// LeaseTTL is how long a lease holds a key while its holder fills it; a fill that takes
	// longer loses it and its value is not stored (DefaultCacheLeaseTTL when zero).
	LeaseTTL time.Duration
	// LeaseWait is how long a Get waits for another instance's lease on its key before running
	// fill itself without storing (DefaultCacheLeaseWait when zero).
	LeaseWait time.Duration
	// VersionTTL bounds how long a family version stays in the local tier (the server
	// invalidates it sooner when it changes); DefaultCacheVersionTTL when zero.
	VersionTTL time.Duration
	// LocalBytes bounds the client-side tier, per connection (DefaultCacheLocalBytes when zero).
	LocalBytes int
	// RemoteOnly turns the client-side tier off: every hit is a round trip (instances short of
	// memory; benchmarks of the remote tier).
	RemoteOnly bool
	// BreakerFailures consecutive failures open the circuit breaker, which then fails every call
	// at once for BreakerCooldown before letting one probe through (defaults when zero).
	BreakerFailures int
	BreakerCooldown time.Duration
	// Observer, when set, hears of the cache's events.
	Observer storage.CacheObserver
	// Now is the breaker's clock (time.Now when nil).
	Now func() time.Time
}

// Cache is storage.Cache on Valkey, with two tiers: server-assisted client-side caching (RESP3
// CLIENT TRACKING, valkey-go's DoCache) keeps hot keys in process memory, and the server
// invalidates them there when any instance changes them.
//
// It owns a client of its own, apart from the shared Client of the other state kinds, because
// tracking needs DisableCache off and a single connection per server: see Invalidate for why
// the single connection makes read-your-own-writes hold.
//
// No stale set, across instances: a miss takes a lease on its key (SET key lease NX GET PX
// LeaseTTL, the approach of valkeyaside and of Facebook's memcache leases) and stores its value
// only if the key still holds that very lease (cache_set.lua). Invalidate deletes the key, and
// with it the lease, so a fill that started before the invalidation stores nothing. Unlike
// valkeyaside, whose lease value is one per client, each lease here is unique, so that a
// second fill of the same process cannot revive the first one's lease; and the refusal is
// reported (CacheStaleSet).
type Cache struct {
	c    *Client // the cache's own
	opt  CacheOptions
	br   *breaker
	sf   flightGroup
	inst string // random, makes lease tokens unique across processes
	seq  atomic.Uint64

	mu    sync.Mutex
	waits map[string]chan struct{} // prefixed key → closed when the server invalidates it
}

var _ storage.Cache = (*Cache)(nil)

// OpenCache connects to the server described by cfg (as Open does, with its KeyPrefix and
// Wrap) with client-side caching on, and returns the cache kept there.
func OpenCache(ctx context.Context, cfg Config, opt CacheOptions) (*Cache, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("valkey: open cache: %w", err)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultCacheTimeout
	}
	if opt.LeaseTTL <= 0 {
		opt.LeaseTTL = DefaultCacheLeaseTTL
	}
	if opt.LeaseWait <= 0 {
		opt.LeaseWait = DefaultCacheLeaseWait
	}
	if opt.VersionTTL <= 0 {
		opt.VersionTTL = DefaultCacheVersionTTL
	}
	if opt.LocalBytes <= 0 {
		opt.LocalBytes = DefaultCacheLocalBytes
	}
	if opt.BreakerFailures <= 0 {
		opt.BreakerFailures = DefaultCacheBreakerFailures
	}
	if opt.BreakerCooldown <= 0 {
		opt.BreakerCooldown = DefaultCacheBreakerCooldown
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	ca := &Cache{
		opt:   opt,
		inst:  hex.EncodeToString(b[:]),
		waits: make(map[string]chan struct{}),
	}
	ca.br = &breaker{threshold: opt.BreakerFailures, cooldown: opt.BreakerCooldown, now: opt.Now, obs: ca.observe}
	copt := cfg.clientOption()
	// One connection per server: the reads that the server tracks and the DELs and INCRs of
	// Invalidate share it, so the invalidation of a key this process caches arrives, in
	// order, before the reply to any command that follows the change (see Invalidate).
	copt.PipelineMultiplex = -1
	// Large pipelines must not move to another connection, for the same reason.
	copt.BlockingPipeline = 1 << 30
	copt.CacheSizeEachConn = opt.LocalBytes
	copt.OnInvalidations = ca.onInvalidations
	// A cache read is worth one quick try: the breaker and the database do the rest.
	copt.DisableRetry = true
	if ca.c, err = connect(ctx, cfg, copt, "open cache"); err != nil {
		return nil, err
	}
	return ca, nil
}

func (ca *Cache) vk() valkeygo.Client { return ca.c.vk }

func (ca *Cache) observe(ev storage.CacheEvent, key string, err error) {
	if ca.opt.Observer != nil {
		ca.opt.Observer.ObserveCache(ev, key, err)
	}
}

// onInvalidations is valkey-go's hook, called after it has dropped the keys from the local
// tier (nil: everything, as on a reconnection); it wakes the Gets waiting on those keys.
func (ca *Cache) onInvalidations(msgs []valkeygo.ValkeyMessage) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if msgs == nil {
		for k, ch := range ca.waits {
			close(ch)
			delete(ca.waits, k)
		}
		return
	}
	for _, m := range msgs {
		k, _ := m.ToString()
		if ch := ca.waits[k]; ch != nil {
			close(ch)
			delete(ca.waits, k)
		}
	}
}

// register returns a channel closed at the next invalidation of k.
func (ca *Cache) register(k string) chan struct{} {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ch := ca.waits[k]
	if ch == nil {
		ch = make(chan struct{})
		ca.waits[k] = ch
	}
	return ch
}

func (ca *Cache) token() string {
	return string(tagLease) + ca.inst + ":" + strconv.FormatUint(ca.seq.Add(1), 10)
}

// callCtx bounds one round trip by the cache's timeout.
func (ca *Cache) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, ca.opt.Timeout)
}

// failed tells whether err (from a call made under ctx) is the server's or the network's
// failure, reports it to the breaker and the Observer, and returns it wrapped for the caller.
// A Valkey nil is no failure, nor is the caller's own context ending.
func (ca *Cache) failed(ctx context.Context, op, key string, err error) error {
	if err == nil || valkeygo.IsValkeyNil(err) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if _, ok := valkeygo.IsValkeyErr(err); !ok {
		ca.br.failure()
	}
	err = fmt.Errorf("valkey: cache %s: %w: %w", op, storage.ErrCacheUnavailable, err)
	ca.observe(storage.CacheError, key, err)
	return err
}

// entry is what a key holds: a value, a lease, or nothing.
type entry struct {
	value []byte
	lease string
	found bool // a value
}

func decode(b []byte) entry {
	switch {
	case len(b) > 0 && b[0] == tagValue:
		return entry{value: b[1:], found: true}
	case len(b) > 0 && b[0] == tagLease:
		return entry{lease: string(b)}
	}
	return entry{} // nothing, or something foreign: a miss
}

func decodeResult(r valkeygo.ValkeyResult) (entry, error) {
	b, err := r.AsBytes()
	if valkeygo.IsValkeyNil(err) {
		return entry{}, nil
	}
	if err != nil {
		return entry{}, err
	}
	return decode(b), nil
}

// read looks k up through the local tier.
func (ca *Cache) read(ctx context.Context, k string, ttl time.Duration) (entry, storage.Source, error) {
	cctx, cancel := ca.callCtx(ctx)
	defer cancel()
	var r valkeygo.ValkeyResult
	if ca.opt.RemoteOnly {
		r = ca.vk().Do(cctx, ca.vk().B().Get().Key(k).Build())
	} else {
		r = ca.vk().DoCache(cctx, ca.vk().B().Get().Key(k).Cache(), ttl)
	}
	e, err := decodeResult(r)
	if err != nil {
		return entry{}, 0, err
	}
	ca.br.success()
	if r.IsCacheHit() {
		return e, storage.SourceLocal, nil
	}
	return e, storage.SourceRemote, nil
}

// Get implements storage.Cache.
func (ca *Cache) Get(ctx context.Context, key string, ttl time.Duration, fill storage.FillFunc) ([]byte, storage.Source, error) {
	k := ca.c.Key(key)
	if ca.br.allow() {
		e, src, err := ca.read(ctx, k, ttl)
		if err = ca.failed(ctx, "get", key, err); err == nil && e.found {
			if src == storage.SourceLocal {
				ca.observe(storage.CacheHitLocal, key, nil)
			} else {
				ca.observe(storage.CacheHitRemote, key, nil)
			}
			return e.value, src, nil
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
	}
	// A miss, a lease, or no cache: one flight per key in this process does the rest.
	res, shared, err := ca.sf.do(ctx, k, func(ctx context.Context) flightResult {
		return ca.miss(ctx, key, k, ttl, fill)
	})
	if err != nil {
		return nil, 0, err
	}
	if shared {
		return res.val, storage.SourceShared, res.err
	}
	return res.val, res.src, res.err
}

// bypass runs fill without the cache.
func (ca *Cache) bypass(ctx context.Context, fill storage.FillFunc) flightResult {
	v, _, err := fill(ctx)
	return flightResult{val: v, src: storage.SourceBypass, err: err}
}

// miss fills k or waits for whoever holds its lease, for at most LeaseWait.
func (ca *Cache) miss(ctx context.Context, key, k string, ttl time.Duration, fill storage.FillFunc) flightResult {
	if !ca.br.allow() {
		return ca.bypass(ctx, fill)
	}
	ca.observe(storage.CacheMiss, key, nil)
	deadline := time.NewTimer(ca.opt.LeaseWait)
	defer deadline.Stop()
	sawLease := false
	for first := true; ; first = false {
		if !first {
			// Someone holds the lease. Re-read through the local tier, which also makes the
			// server track k for us again (tracking ends at each invalidation), so that the
			// holder's SET, or its lease's expiry, wakes us.
			wait := ca.register(k)
			e, src, err := ca.read(ctx, k, ttl)
			if err = ca.failed(ctx, "get", key, err); err != nil {
				if ctx.Err() != nil {
					return flightResult{err: ctx.Err()}
				}
				return ca.bypass(ctx, fill)
			}
			switch {
			case e.found:
				return flightResult{val: e.value, src: storage.SourceShared}
			case e.lease != "":
				select {
				case <-wait:
					continue
				case <-deadline.C:
					return ca.bypass(ctx, fill)
				case <-ctx.Done():
					return flightResult{err: ctx.Err()}
				}
			case sawLease && src == storage.SourceLocal:
				// The local tier still has the miss from before the lease; its invalidation is
				// on its way. Give it a moment rather than spin.
				select {
				case <-wait:
				case <-time.After(time.Millisecond):
				case <-deadline.C:
					return ca.bypass(ctx, fill)
				case <-ctx.Done():
					return flightResult{err: ctx.Err()}
				}
			}
		}
		tok := ca.token()
		cctx, cancel := ca.callCtx(ctx)
		r := ca.vk().Do(cctx, ca.vk().B().Set().Key(k).Value(tok).Nx().Get().Px(ca.opt.LeaseTTL).Build())
		cancel()
		e, err := decodeResult(r)
		if err = ca.failed(ctx, "lease", key, err); err != nil {
			if ctx.Err() != nil {
				return flightResult{err: ctx.Err()}
			}
			return ca.bypass(ctx, fill)
		}
		ca.br.success()
		switch {
		case e.found: // filled meanwhile
			return flightResult{val: e.value, src: storage.SourceShared}
		case e.lease != "": // another instance fills it: wait for its value
			sawLease = true
			continue
		}
		return ca.fillLeased(ctx, key, k, tok, ttl, fill)
	}
}

// fillLeased runs fill while holding the lease tok on k, and stores the value if the lease is
// still there.
func (ca *Cache) fillLeased(ctx context.Context, key, k, tok string, ttl time.Duration, fill storage.FillFunc) flightResult {
	released := false
	defer func() {
		if !released { // fill failed or panicked: give the lease back
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ca.opt.Timeout)
			defer cancel()
			_ = cacheReleaseScript.Exec(rctx, ca.vk(), []string{k}, []string{tok}).Error()
		}
	}()
	val, fttl, err := fill(ctx)
	if err != nil {
		return flightResult{err: err, src: storage.SourceFill}
	}
	released = true
	if fttl <= 0 {
		fttl = ttl
	}
	px := storage.Jitter(fttl).Milliseconds()
	if px < 1 {
		px = 1
	}
	buf := make([]byte, 0, len(val)+1)
	buf = append(append(buf, tagValue), val...)
	// The value is ours to store even if the caller gives up now.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ca.opt.Timeout)
	defer cancel()
	n, err := cacheSetScript.Exec(cctx, ca.vk(), []string{k}, []string{tok, string(buf), strconv.FormatInt(px, 10)}).AsInt64()
	if err = ca.failed(cctx, "set", key, err); err != nil {
		return flightResult{val: val, src: storage.SourceBypass}
	}
	ca.br.success()
	if n == 0 {
		ca.observe(storage.CacheStaleSet, key, nil)
	} else {
		ca.observe(storage.CacheFill, key, nil)
	}
	return flightResult{val: val, src: storage.SourceFill}
}

// GetMulti implements storage.Cache: one DoMultiCache for the reads; for the misses, one
// pipeline of leases, one call to fill, one pipeline of compare-and-sets.
func (ca *Cache) GetMulti(ctx context.Context, keys []string, ttl time.Duration, fill storage.FillMultiFunc) ([][]byte, error) {
	if !ca.br.allow() {
		return nil, fmt.Errorf("valkey: cache getmulti: %w: circuit breaker open", storage.ErrCacheUnavailable)
	}
	values := make([][]byte, len(keys))
	if len(keys) == 0 {
		return values, nil
	}
	cmds := make([]valkeygo.CacheableTTL, len(keys))
	for i, key := range keys {
		cmds[i] = valkeygo.CT(ca.vk().B().Get().Key(ca.c.Key(key)).Cache(), ttl)
	}
	cctx, cancel := ca.callCtx(ctx)
	rs := ca.vk().DoMultiCache(cctx, cmds...)
	cancel()
	var missing []int
	seen := make(map[string]bool)
	for i, r := range rs {
		e, err := decodeResult(r)
		if err = ca.failed(ctx, "getmulti", keys[i], err); err != nil {
			return nil, err
		}
		switch {
		case e.found:
			values[i] = e.value
			if r.IsCacheHit() {
				ca.observe(storage.CacheHitLocal, keys[i], nil)
			} else {
				ca.observe(storage.CacheHitRemote, keys[i], nil)
			}
		default:
			ca.observe(storage.CacheMiss, keys[i], nil)
			if e.lease == "" && !seen[keys[i]] {
				seen[keys[i]] = true
				missing = append(missing, i)
			}
		}
	}
	ca.br.success()
	if fill == nil || len(missing) == 0 {
		return values, nil
	}

	// Leases for the missing keys.
	toks := make([]string, len(missing))
	lcmds := make(valkeygo.Commands, len(missing))
	for j, i := range missing {
		toks[j] = ca.token()
		lcmds[j] = ca.vk().B().Set().Key(ca.c.Key(keys[i])).Value(toks[j]).Nx().Get().Px(ca.opt.LeaseTTL).Build()
	}
	cctx, cancel = ca.callCtx(ctx)
	lrs := ca.vk().DoMulti(cctx, lcmds...)
	cancel()
	var owned []int // indexes into missing
	for j, r := range lrs {
		e, err := decodeResult(r)
		if err = ca.failed(ctx, "lease", keys[missing[j]], err); err != nil {
			ca.releaseMulti(ctx, keys, missing, toks, owned)
			return nil, err
		}
		switch {
		case e.found:
			values[missing[j]] = e.value
		case e.lease == "":
			owned = append(owned, j)
		}
	}
	if len(owned) == 0 {
		return values, nil
	}
	fkeys := make([]string, len(owned))
	for o, j := range owned {
		fkeys[o] = keys[missing[j]]
	}
	vals, err := fill(ctx, fkeys)
	if err == nil && len(vals) != len(fkeys) {
		err = fmt.Errorf("valkey: cache getmulti: fill returned %d values for %d keys", len(vals), len(fkeys))
	}
	if err != nil {
		ca.releaseMulti(ctx, keys, missing, toks, owned)
		return nil, err
	}
	// The releases, then the compare-and-sets, in one pipeline.
	var rels, sets []scriptCall
	var setKeys []string
	for o, j := range owned {
		k := ca.c.Key(keys[missing[j]])
		if vals[o] == nil {
			rels = append(rels, scriptCall{s: cacheReleaseScript, keys: []string{k}, args: []string{toks[j]}})
			continue
		}
		values[missing[j]] = vals[o]
		px := max(storage.Jitter(ttl).Milliseconds(), 1)
		sets = append(sets, scriptCall{s: cacheSetScript, keys: []string{k}, args: []string{toks[j], string(tagValue) + string(vals[o]), strconv.FormatInt(px, 10)}})
		setKeys = append(setKeys, keys[missing[j]])
	}
	cctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), ca.opt.Timeout)
	defer cancel()
	res := execScripts(cctx, ca.vk(), append(rels, sets...))
	for o, r := range res[len(rels):] {
		n, err := r.AsInt64()
		if err = ca.failed(cctx, "set", setKeys[o], err); err != nil {
			continue // the value is returned, just not stored
		}
		if n == 0 {
			ca.observe(storage.CacheStaleSet, setKeys[o], nil)
		} else {
			ca.observe(storage.CacheFill, setKeys[o], nil)
		}
	}
	return values, nil
}

// releaseMulti gives back the leases of owned (indexes into missing).
func (ca *Cache) releaseMulti(ctx context.Context, keys []string, missing []int, toks []string, owned []int) {
	if len(owned) == 0 {
		return
	}
	rels := make([]scriptCall, len(owned))
	for o, j := range owned {
		rels[o] = scriptCall{s: cacheReleaseScript, keys: []string{ca.c.Key(keys[missing[j]])}, args: []string{toks[j]}}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ca.opt.Timeout)
	defer cancel()
	execScripts(cctx, ca.vk(), rels)
}

// Version implements storage.Cache. The version is read through the local tier; a family
// without one gets the current time in microseconds (SET NX GET: whoever is first wins).
func (ca *Cache) Version(ctx context.Context, family string) (int64, error) {
	if !ca.br.allow() {
		return 0, fmt.Errorf("valkey: cache version: %w: circuit breaker open", storage.ErrCacheUnavailable)
	}
	k := ca.c.Key(family)
	cctx, cancel := ca.callCtx(ctx)
	defer cancel()
	var vr valkeygo.ValkeyResult
	if ca.opt.RemoteOnly {
		vr = ca.vk().Do(cctx, ca.vk().B().Get().Key(k).Build())
	} else {
		vr = ca.vk().DoCache(cctx, ca.vk().B().Get().Key(k).Cache(), ca.opt.VersionTTL)
	}
	s, err := vr.ToString()
	if valkeygo.IsValkeyNil(err) {
		now := strconv.FormatInt(time.Now().UnixMicro(), 10)
		s, err = ca.vk().Do(cctx, ca.vk().B().Set().Key(k).Value(now).Nx().Get().Build()).ToString()
		if valkeygo.IsValkeyNil(err) {
			s, err = now, nil
		}
	}
	if err = ca.failed(ctx, "version", family, err); err != nil {
		return 0, err
	}
	ca.br.success()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("valkey: cache version %s: %q is not a version", family, s)
	}
	return v, nil
}

// Invalidate implements storage.Cache in one pipeline on the cache's single connection:
// DEL of every key, SET NX and INCR of every family, then an EXISTS of each of them.
//
// Read-your-own-writes: the server sends this connection the invalidation of a key it tracks
// for us after the reply to the command that changed it (Redis 7 and Valkey defer it to the
// end of the command) and before the reply to the next one, and valkey-go drops the key from
// the local tier as it reads the invalidation, before it reads on. So when the reply of the
// trailing EXISTS arrives, the local tier holds none of the old values. Then the in-process
// flights of the keys are forgotten, so later Gets do not join a fill that began before.
func (ca *Cache) Invalidate(ctx context.Context, keys []string, families []string) error {
	if len(keys) == 0 && len(families) == 0 {
		return nil
	}
	if !ca.br.allow() {
		return fmt.Errorf("valkey: cache invalidate: %w: circuit breaker open", storage.ErrCacheUnavailable)
	}
	b := ca.vk().B()
	cmds := make(valkeygo.Commands, 0, 2*len(keys)+3*len(families))
	pks := make([]string, len(keys))
	for i, key := range keys {
		pks[i] = ca.c.Key(key)
		cmds = append(cmds, b.Del().Key(pks[i]).Build())
	}
	now := strconv.FormatInt(time.Now().UnixMicro(), 10)
	for _, f := range families {
		pf := ca.c.Key(f)
		cmds = append(cmds, b.Set().Key(pf).Value(now).Nx().Build(), b.Incr().Key(pf).Build())
	}
	for _, pk := range pks {
		cmds = append(cmds, b.Exists().Key(pk).Build())
	}
	for _, f := range families {
		cmds = append(cmds, b.Exists().Key(ca.c.Key(f)).Build())
	}
	cctx, cancel := ca.callCtx(ctx)
	defer cancel()
	var firstErr error
	for _, r := range ca.vk().DoMulti(cctx, cmds...) {
		if err := r.Error(); err != nil && !valkeygo.IsValkeyNil(err) && firstErr == nil {
			firstErr = err
		}
	}
	// Whatever happened, no later Get may join a fill that began before this call.
	for _, pk := range pks {
		ca.sf.forget(pk)
	}
	if err := ca.failed(ctx, "invalidate", "", firstErr); err != nil {
		return err
	}
	ca.br.success()
	for _, k := range keys {
		ca.observe(storage.CacheInvalidate, k, nil)
	}
	for _, f := range families {
		ca.observe(storage.CacheInvalidate, f, nil)
	}
	return nil
}

// Ping implements storage.Cache; it bypasses the breaker, so it also tells when the server is
// back.
func (ca *Cache) Ping(ctx context.Context) error {
	cctx, cancel := ca.callCtx(ctx)
	defer cancel()
	if err := ca.vk().Do(cctx, ca.vk().B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("valkey: cache ping: %w: %w", storage.ErrCacheUnavailable, err)
	}
	return nil
}

// Close implements storage.Cache: it closes the cache's own connection.
func (ca *Cache) Close() error {
	ca.vk().Close()
	return nil
}

// BreakerOpen reports whether the circuit breaker is open (failing calls at once), for tests and
// health reports.
func (ca *Cache) BreakerOpen() bool { return ca.br.isOpen() }

// breaker is a circuit breaker: closed, it counts consecutive failures; at threshold it opens
// and refuses every call for cooldown; then it lets one probe through (half-open), which
// closes it on success or opens it again on failure. A probe that never reports is replaced
// after another cooldown.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time
	obs       func(storage.CacheEvent, string, error)

	mu       sync.Mutex
	failures int
	open     bool
	until    time.Time // open: refuse until then; half-open: the probe's deadline
	probing  bool
}

func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	now := b.now()
	if now.Before(b.until) {
		return false
	}
	b.probing = true
	b.until = now.Add(b.cooldown)
	return true
}

func (b *breaker) success() {
	b.mu.Lock()
	wasOpen := b.open
	b.failures, b.open, b.probing = 0, false, false
	b.mu.Unlock()
	if wasOpen {
		b.obs(storage.CacheBreakerClose, "", nil)
	}
}

func (b *breaker) failure() {
	b.mu.Lock()
	b.failures++
	opened := false
	if b.probing || (!b.open && b.failures >= b.threshold) {
		opened = !b.open
		b.open, b.probing = true, false
		b.until = b.now().Add(b.cooldown)
	}
	b.mu.Unlock()
	if opened {
		b.obs(storage.CacheBreakerOpen, "", nil)
	}
}

func (b *breaker) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// flightResult is what one flight hands to every caller that joined it.
type flightResult struct {
	val []byte
	src storage.Source
	err error
}

// flightGroup runs one function per key at a time (single-flight), with forget to detach a
// key's flight so that later calls start afresh.
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	res  flightResult
}

// do runs fn for key, or waits for the flight already running it; shared says it waited. The
// flight runs under the context of the caller that started it; a waiter whose own context is
// still live when that one ended starts again.
func (g *flightGroup) do(ctx context.Context, key string, fn func(context.Context) flightResult) (res flightResult, shared bool, err error) {
	for {
		g.mu.Lock()
		if g.m == nil {
			g.m = make(map[string]*flightCall)
		}
		if c := g.m[key]; c != nil {
			g.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return flightResult{}, true, ctx.Err()
			}
			if isContextErr(c.res.err) && ctx.Err() == nil {
				continue
			}
			return c.res, true, nil
		}
		c := &flightCall{done: make(chan struct{})}
		g.m[key] = c
		g.mu.Unlock()
		func() {
			defer func() {
				g.mu.Lock()
				if g.m[key] == c {
					delete(g.m, key)
				}
				g.mu.Unlock()
				close(c.done)
			}()
			c.res = flightResult{err: errors.New("valkey: cache fill panicked")}
			c.res = fn(ctx)
		}()
		return c.res, false, nil
	}
}

func (g *flightGroup) forget(key string) {
	g.mu.Lock()
	delete(g.m, key)
	g.mu.Unlock()
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
