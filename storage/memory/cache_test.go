package memory_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
	"github.com/motorpool/motorpool/storage/storagetest"
)

func TestCache(t *testing.T) {
	storagetest.RunCache(t, func(t *testing.T) storage.Cache {
		c := memory.NewCache(memory.CacheConfig{})
		t.Cleanup(func() { c.Close() })
		return c
	})
	storagetest.RunCacheObserved(t, func(t *testing.T, obs storage.CacheObserver) storage.Cache {
		c := memory.NewCache(memory.CacheConfig{Observer: obs})
		t.Cleanup(func() { c.Close() })
		return c
	})
}

func constFill(v string) storage.FillFunc {
	return func(context.Context) ([]byte, time.Duration, error) { return []byte(v), 0, nil }
}

// TestCacheLRU: beyond MaxEntries the least recently used entry goes, and reading an entry
// makes it recent.
func TestCacheLRU(t *testing.T) {
	ctx := t.Context()
	rec := &storagetest.CacheRecorder{}
	c := memory.NewCache(memory.CacheConfig{MaxEntries: 3, Observer: rec})
	defer c.Close()
	get := func(k, v string) storage.Source {
		t.Helper()
		_, src, err := c.Get(ctx, k, time.Minute, constFill(v))
		if err != nil {
			t.Fatalf("Get(%s): %v", k, err)
		}
		return src
	}
	for _, k := range []string{"a", "b", "c"} {
		get(k, k)
	}
	get("a", "x") // a is now the most recent; b the least
	get("d", "d") // evicts b
	if n := c.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
	// b last: reading it refills it, which evicts a (read least recently of a, c, d).
	for _, k := range []string{"a", "c", "d", "b"} {
		src, wantHit := get(k, k), k != "b"
		if src.Hit() != wantHit {
			t.Errorf("%s: source %v, want hit %v", k, src, wantHit)
		}
	}
	var evicted []string
	for _, e := range rec.Events() {
		if e.Event == storage.CacheEvict {
			evicted = append(evicted, e.Key)
		}
	}
	if want := []string{"b", "a"}; !slices.Equal(evicted, want) {
		t.Errorf("evicted %q, want %q", evicted, want)
	}
}

// TestCacheJitter checks, on an injected clock, that every TTL lands within ±10% of the
// nominal one and that they are spread.
func TestCacheJitter(t *testing.T) {
	ctx := t.Context()
	c0 := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := memory.NewCache(memory.CacheConfig{Now: c0.Now})
	defer c.Close()
	const n = 200
	key := func(i int) string { return "k" + strconv.Itoa(i) }
	for i := range n {
		c.Get(ctx, key(i), 100*time.Second, constFill("v"))
	}
	live := func() int {
		got, err := c.GetMulti(ctx, func() []string {
			ks := make([]string, n)
			for i := range ks {
				ks[i] = key(i)
			}
			return ks
		}(), time.Minute, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := 0
		for _, v := range got {
			if v != nil {
				m++
			}
		}
		return m
	}
	c0.Add(90*time.Second - time.Millisecond)
	if m := live(); m != n {
		t.Errorf("at 0.9·TTL %d of %d live, want all", m, n)
	}
	c0.Add(10 * time.Second)
	if m := live(); m < n/10 || m > n*9/10 {
		t.Errorf("at TTL %d of %d live, want about half (jitter spreads expiries)", m, n)
	}
	c0.Add(10*time.Second + 2*time.Millisecond)
	if m := live(); m != 0 {
		t.Errorf("at 1.1·TTL %d of %d live, want none", m, n)
	}
}

// TestCacheVersionNeverReused: a family version evicted by the size bound comes back higher.
func TestCacheVersionNeverReused(t *testing.T) {
	ctx := t.Context()
	c := memory.NewCache(memory.CacheConfig{MaxEntries: 2})
	defer c.Close()
	v1, _ := c.Version(ctx, "users:all")
	c.Get(ctx, "x", time.Minute, constFill("x"))
	c.Get(ctx, "y", time.Minute, constFill("y")) // evicts the version
	v2, _ := c.Version(ctx, "users:all")
	if v2 <= v1 {
		t.Errorf("version after eviction = %d, want > %d", v2, v1)
	}
}
