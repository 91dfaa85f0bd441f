package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/storage"
)

// RunCache runs the storage.Cache conformance suite. Every subtest checks one part of the Cache
// contract on its own cache from newCache, which must return a new, empty cache (its own key
// prefix on a shared server) and release it when its t ends. The subtests run in parallel.
func RunCache(t *testing.T, newCache func(t *testing.T) storage.Cache) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c storage.Cache)
	}{
		{"FillThenHit", testCacheFillThenHit},
		{"FillError", testCacheFillError},
		{"FillTTL", testCacheFillTTL},
		{"SingleFlight", testCacheSingleFlight},
		{"StaleSet", testCacheStaleSet},
		{"StaleFlightNotJoined", testCacheStaleFlightNotJoined},
		{"Invalidate", testCacheInvalidate},
		{"ReadYourOwnWrites", testCacheReadYourOwnWrites},
		{"Versions", testCacheVersions},
		{"GetMulti", testCacheGetMulti},
		{"Stress", testCacheStress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newCache(t))
		})
	}
}

// RunCacheObserved runs the part of the suite that needs the backend's CacheObserver:
// newCache must return a new, empty cache that reports to obs.
func RunCacheObserved(t *testing.T, newCache func(t *testing.T, obs storage.CacheObserver) storage.Cache) {
	t.Run("StaleSetReported", func(t *testing.T) {
		t.Parallel()
		rec := &CacheRecorder{}
		c := newCache(t, rec)
		staleSet(t, c)
		if n := rec.Count(storage.CacheStaleSet); n != 1 {
			t.Errorf("stale-set refusals reported = %d, want 1 (events %v)", n, rec.Events())
		}
	})
	t.Run("Events", func(t *testing.T) {
		t.Parallel()
		rec := &CacheRecorder{}
		c := newCache(t, rec)
		ctx := t.Context()
		get(t, c, "k", fillWith("v", nil))
		get(t, c, "k", fillWith("v", nil))
		if err := c.Invalidate(ctx, []string{"k"}, []string{"fam"}); err != nil {
			t.Fatal(err)
		}
		want := map[storage.CacheEvent]int{storage.CacheMiss: 1, storage.CacheFill: 1, storage.CacheInvalidate: 2}
		got := map[storage.CacheEvent]int{}
		for ev := range want {
			got[ev] = rec.Count(ev)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if hits := rec.Count(storage.CacheHitLocal) + rec.Count(storage.CacheHitRemote); hits != 1 {
			t.Errorf("hits = %d, want 1 (events %v)", hits, rec.Events())
		}
	})
}

// CacheRecorder is a storage.CacheObserver that remembers every event.
type CacheRecorder struct {
	mu     sync.Mutex
	events []CacheRecord
}

// CacheRecord is one event a CacheRecorder heard.
type CacheRecord struct {
	Event storage.CacheEvent
	Key   string
	Err   error
}

// ObserveCache implements storage.CacheObserver.
func (r *CacheRecorder) ObserveCache(ev storage.CacheEvent, key string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, CacheRecord{ev, key, err})
}

// Count returns how many times ev was heard.
func (r *CacheRecorder) Count(ev storage.CacheEvent) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Event == ev {
			n++
		}
	}
	return n
}

// Events returns every event heard so far.
func (r *CacheRecorder) Events() []CacheRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// fillWith returns a fill that returns v (and counts its calls in n when not nil).
func fillWith(v string, n *atomic.Int64) storage.FillFunc {
	return func(context.Context) ([]byte, time.Duration, error) {
		if n != nil {
			n.Add(1)
		}
		return []byte(v), 0, nil
	}
}

func get(t *testing.T, c storage.Cache, key string, fill storage.FillFunc) (string, storage.Source) {
	t.Helper()
	v, src, err := c.Get(t.Context(), key, time.Minute, fill)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return string(v), src
}

func testCacheFillThenHit(t *testing.T, c storage.Cache) {
	var n atomic.Int64
	v, src := get(t, c, "user:1", fillWith(`{"id":1}`, &n))
	if v != `{"id":1}` || src != storage.SourceFill {
		t.Errorf("first Get = %q, %v; want the fill's value, fill", v, src)
	}
	for range 3 {
		v, src = get(t, c, "user:1", fillWith("other", &n))
		if v != `{"id":1}` || !src.Hit() {
			t.Errorf("Get after fill = %q, %v; want the stored value, a hit", v, src)
		}
	}
	if n.Load() != 1 {
		t.Errorf("fill ran %d times, want 1", n.Load())
	}
	// An empty value is a value.
	get(t, c, "empty", fillWith("", nil))
	if v, src := get(t, c, "empty", fillWith("x", nil)); v != "" || !src.Hit() {
		t.Errorf("Get of an empty value = %q, %v; want \"\", a hit", v, src)
	}
}

func testCacheFillError(t *testing.T, c storage.Cache) {
	boom := errors.New("boom")
	_, _, err := c.Get(t.Context(), "k", time.Minute, func(context.Context) ([]byte, time.Duration, error) {
		return nil, 0, fmt.Errorf("db: %w", boom)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Get with a failing fill: err = %v, want boom", err)
	}
	var n atomic.Int64
	if v, src := get(t, c, "k", fillWith("v", &n)); v != "v" || src != storage.SourceFill || n.Load() != 1 {
		t.Errorf("Get after a failed fill = %q, %v (fill ran %d times); want a fresh fill", v, src, n.Load())
	}
}

func testCacheFillTTL(t *testing.T, c storage.Cache) {
	short := func(context.Context) ([]byte, time.Duration, error) {
		return []byte("neg"), 200 * time.Millisecond, nil
	}
	get(t, c, "neg", short)
	get(t, c, "pos", fillWith("pos", nil))
	if v, src := get(t, c, "neg", fillWith("x", nil)); v != "neg" || !src.Hit() {
		t.Fatalf("Get within the fill's TTL = %q, %v; want a hit", v, src)
	}
	time.Sleep(350 * time.Millisecond) // past 200 ms + 10% jitter
	if v, src := get(t, c, "neg", fillWith("new", nil)); v != "new" || src != storage.SourceFill {
		t.Errorf("Get after the fill's TTL = %q, %v; want a fresh fill", v, src)
	}
	if v, src := get(t, c, "pos", fillWith("x", nil)); v != "pos" || !src.Hit() {
		t.Errorf("Get of a key with Get's TTL = %q, %v; want a hit", v, src)
	}
}

func testCacheSingleFlight(t *testing.T, c storage.Cache) {
	var n atomic.Int64
	fill := func(context.Context) ([]byte, time.Duration, error) {
		n.Add(1)
		time.Sleep(100 * time.Millisecond)
		return []byte("v"), 0, nil
	}
	var wg sync.WaitGroup
	srcs := make([]storage.Source, 50)
	for i := range srcs {
		wg.Go(func() {
			v, src, err := c.Get(t.Context(), "hot", time.Minute, fill)
			if err != nil || string(v) != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
			srcs[i] = src
		})
	}
	wg.Wait()
	if n.Load() != 1 {
		t.Errorf("50 concurrent misses ran fill %d times, want 1", n.Load())
	}
	if fills := countSource(srcs, storage.SourceFill); fills != 1 {
		t.Errorf("sources %v: %d SourceFill, want 1", srcs, fills)
	}
}

func countSource(srcs []storage.Source, s storage.Source) int {
	n := 0
	for _, x := range srcs {
		if x == s {
			n++
		}
	}
	return n
}

// staleSet plays the interleaving a stale set needs: a fill reads the old value and blocks;
// the write commits and invalidates; the fill returns the old value. It checks that the old
// value is not stored.
func staleSet(t *testing.T, c storage.Cache) {
	t.Helper()
	ctx := t.Context()
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan string)
	go func() {
		v, _, err := c.Get(ctx, "user:7", time.Minute, func(context.Context) ([]byte, time.Duration, error) {
			close(started)
			<-release
			return []byte("old"), 0, nil
		})
		if err != nil {
			t.Errorf("slow Get: %v", err)
		}
		done <- string(v)
	}()
	<-started
	if err := c.Invalidate(ctx, []string{"user:7"}, nil); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	close(release)
	if v := <-done; v != "old" {
		t.Errorf("slow Get = %q, want what its fill read", v)
	}
	var n atomic.Int64
	if v, src := get(t, c, "user:7", fillWith("new", &n)); v != "new" || n.Load() != 1 {
		t.Errorf("Get after the invalidation = %q, %v; want a fresh fill (the slow fill's value must not be stored)", v, src)
	}
	if v, src := get(t, c, "user:7", fillWith("x", nil)); v != "new" || !src.Hit() {
		t.Errorf("second Get = %q, %v; want the fresh value, a hit", v, src)
	}
}

func testCacheStaleSet(t *testing.T, c storage.Cache) { staleSet(t, c) }

// testCacheStaleFlightNotJoined: a Get that starts after Invalidate returned must not be handed
// the value of a fill that started before it, even while that fill is still running.
func testCacheStaleFlightNotJoined(t *testing.T, c storage.Cache) {
	ctx := t.Context()
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = c.Get(ctx, "user:8", time.Minute, func(context.Context) ([]byte, time.Duration, error) {
			close(started)
			<-release
			return []byte("old"), 0, nil
		})
	}()
	<-started
	if err := c.Invalidate(ctx, []string{"user:8"}, nil); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	v, src := get(t, c, "user:8", fillWith("new", nil))
	close(release)
	<-done
	if v != "new" {
		t.Errorf("Get after the invalidation, during the old fill = %q, %v; want \"new\"", v, src)
	}
	if v, _ := get(t, c, "user:8", fillWith("x", nil)); v != "new" {
		t.Errorf("Get after both fills = %q, want \"new\"", v)
	}
}

func testCacheInvalidate(t *testing.T, c storage.Cache) {
	ctx := t.Context()
	get(t, c, "a", fillWith("a1", nil))
	get(t, c, "b", fillWith("b1", nil))
	if err := c.Invalidate(ctx, []string{"a", "never-cached"}, nil); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	if v, src := get(t, c, "a", fillWith("a2", nil)); v != "a2" || src != storage.SourceFill {
		t.Errorf("Get of an invalidated key = %q, %v; want a fresh fill", v, src)
	}
	if v, src := get(t, c, "b", fillWith("b2", nil)); v != "b1" || !src.Hit() {
		t.Errorf("Get of another key = %q, %v; want it untouched", v, src)
	}
	if err := c.Invalidate(ctx, nil, nil); err != nil {
		t.Errorf("Invalidate of nothing: %v", err)
	}
}

// testCacheReadYourOwnWrites: right after Invalidate returns, the same process never serves the
// old value, from any tier; many times, to catch an asynchronous invalidation losing the race.
func testCacheReadYourOwnWrites(t *testing.T, c storage.Cache) {
	ctx := t.Context()
	for i := range 200 {
		want := strconv.Itoa(i)
		if v, _ := get(t, c, "user:1", fillWith(want, nil)); v != want {
			t.Fatalf("round %d: Get = %q, want %q", i, v, want)
		}
		if v, src := get(t, c, "user:1", fillWith("x", nil)); v != want || !src.Hit() {
			t.Fatalf("round %d: second Get = %q, %v; want a hit", i, v, src)
		}
		// Alternately the key alone, and the family alone, each the last command of its call.
		if i%2 == 0 {
			if err := c.Invalidate(ctx, []string{"user:1"}, nil); err != nil {
				t.Fatalf("round %d: Invalidate: %v", i, err)
			}
			continue
		}
		v0, err := c.Version(ctx, "users:all")
		if err != nil {
			t.Fatal(err)
		}
		if v, err := c.Version(ctx, "users:all"); err != nil || v != v0 {
			t.Fatalf("round %d: Version again = %d, %v; want %d", i, v, err, v0)
		}
		if err := c.Invalidate(ctx, nil, []string{"users:all"}); err != nil {
			t.Fatalf("round %d: Invalidate: %v", i, err)
		}
		if v, err := c.Version(ctx, "users:all"); err != nil || v <= v0 {
			t.Fatalf("round %d: Version right after Invalidate = %d, %v; want > %d", i, v, err, v0)
		}
		if err := c.Invalidate(ctx, []string{"user:1"}, nil); err != nil {
			t.Fatalf("round %d: Invalidate: %v", i, err)
		}
	}
}

func testCacheVersions(t *testing.T, c storage.Cache) {
	ctx := t.Context()
	version := func(f string) int64 {
		t.Helper()
		v, err := c.Version(ctx, f)
		if err != nil {
			t.Fatalf("Version %s: %v", f, err)
		}
		return v
	}
	v0 := version("users:all")
	if v0 <= 0 {
		t.Fatalf("Version = %d, want > 0", v0)
	}
	if v := version("users:all"); v != v0 {
		t.Errorf("Version again = %d, want %d", v, v0)
	}
	other := version("vehicles:all")
	page := storage.FamilyKey("users:all", v0, "limit=20")
	if page != "users:all:v"+strconv.FormatInt(v0, 10)+":limit=20" {
		t.Errorf("FamilyKey = %q", page)
	}
	get(t, c, page, fillWith("page1", nil))

	prev := v0
	for range 3 {
		if err := c.Invalidate(ctx, nil, []string{"users:all"}); err != nil {
			t.Fatalf("Invalidate: %v", err)
		}
		v := version("users:all")
		if v <= prev {
			t.Errorf("Version after Invalidate = %d, want > %d", v, prev)
		}
		prev = v
	}
	if v := version("vehicles:all"); v != other {
		t.Errorf("another family's version = %d, want %d (untouched)", v, other)
	}
	if v, src := get(t, c, storage.FamilyKey("users:all", prev, "limit=20"), fillWith("page1b", nil)); v != "page1b" || src != storage.SourceFill {
		t.Errorf("Get of the page at the new version = %q, %v; want a fresh fill", v, src)
	}
	// A family invalidated before it was ever read gets a version too.
	if err := c.Invalidate(ctx, nil, []string{"vehicles:user:9"}); err != nil {
		t.Fatal(err)
	}
	if v := version("vehicles:user:9"); v <= 0 {
		t.Errorf("Version of a family created by Invalidate = %d", v)
	}
}

func testCacheGetMulti(t *testing.T, c storage.Cache) {
	ctx := t.Context()
	get(t, c, "a", fillWith("A", nil))
	get(t, c, "c", fillWith("C", nil))
	keys := []string{"a", "b", "c", "d"}
	got, err := c.GetMulti(ctx, keys, time.Minute, nil)
	if err != nil {
		t.Fatalf("GetMulti: %v", err)
	}
	if diff := cmp.Diff([]string{"A", "", "C", ""}, strs(got)); diff != "" || got[1] != nil || got[3] != nil {
		t.Errorf("GetMulti without fill (-want +got):\n%s", diff)
	}
	var asked [][]string
	got, err = c.GetMulti(ctx, keys, time.Minute, func(_ context.Context, ks []string) ([][]byte, error) {
		asked = append(asked, ks)
		out := make([][]byte, len(ks))
		for i, k := range ks {
			if k == "b" {
				out[i] = []byte("B")
			} // "d" has nothing to cache
		}
		return out, nil
	})
	if err != nil {
		t.Fatalf("GetMulti with fill: %v", err)
	}
	if diff := cmp.Diff([][]string{{"b", "d"}}, asked); diff != "" {
		t.Errorf("fill asked for (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"A", "B", "C", ""}, strs(got)); diff != "" {
		t.Errorf("GetMulti with fill (-want +got):\n%s", diff)
	}
	if v, src := get(t, c, "b", fillWith("x", nil)); v != "B" || !src.Hit() {
		t.Errorf("Get of a key GetMulti filled = %q, %v; want a hit", v, src)
	}
	if v, src := get(t, c, "d", fillWith("D", nil)); v != "D" || src != storage.SourceFill {
		t.Errorf("Get of a key GetMulti had no value for = %q, %v; want a fill", v, src)
	}
	boom := errors.New("boom")
	if _, err := c.GetMulti(ctx, []string{"e"}, time.Minute, func(context.Context, []string) ([][]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("GetMulti with a failing fill: %v, want boom", err)
	}
	if v, src := get(t, c, "e", fillWith("E", nil)); v != "E" || src != storage.SourceFill {
		t.Errorf("Get after a failed GetMulti fill = %q, %v; want a fill", v, src)
	}
}

func strs(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// testCacheStress has writers change a fake database and invalidate, and readers read through
// the cache with slow fills, on a few keys; once the writers stop, every read must return what
// the database holds.
func testCacheStress(t *testing.T, c storage.Cache) {
	ctx := t.Context()
	const nkeys = 4
	var db [nkeys]atomic.Int64
	key := func(i int) string { return "user:" + strconv.Itoa(i) }
	fill := func(i int) storage.FillFunc {
		return func(context.Context) ([]byte, time.Duration, error) {
			v := db[i].Load()
			time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // the slow reader
			return []byte(strconv.FormatInt(v, 10)), 0, nil
		}
	}
	stop := make(chan struct{})
	var readers, writers sync.WaitGroup
	for range 8 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rand.IntN(nkeys)
				if _, _, err := c.Get(ctx, key(i), time.Minute, fill(i)); err != nil {
					t.Errorf("Get: %v", err)
					return
				}
			}
		})
	}
	for range 4 {
		writers.Go(func() {
			for range 100 {
				i := rand.IntN(nkeys)
				db[i].Add(1) // the commit
				if err := c.Invalidate(ctx, []string{key(i)}, nil); err != nil {
					t.Errorf("Invalidate: %v", err)
					return
				}
				time.Sleep(time.Duration(rand.IntN(2)) * time.Millisecond)
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	for i := range nkeys {
		want := strconv.FormatInt(db[i].Load(), 10)
		if v, src := get(t, c, key(i), fill(i)); v != want {
			t.Errorf("after the writers: %s = %q (%v), database has %q", key(i), v, src, want)
		}
	}
}
