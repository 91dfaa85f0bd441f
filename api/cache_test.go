package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/client"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// The cache decorator seen from the HTTP edge, on both pairings (SQLite with the in-process
// cache, PostgreSQL with Valkey): X-Cache and ETag, the plan's key table read straight out of
// Valkey, exact invalidation, negative caching, authorization before the cache, read-your-own-
// writes, no stale set (deterministically and under random load on two instances), no
// stampede, a Valkey outage and the cache metrics.

// sendE sends one request with tok as its bearer token ("" for none), body JSON-encoded when
// not nil, and hdr as extra header name/value pairs. It is safe to call from any goroutine.
func (s *testServer) sendE(tok, method, path string, body any, hdr ...string) (*http.Response, []byte, error) {
	authz := ""
	if tok != "" {
		authz = "Bearer " + tok
	}
	return request(s, method, path, authz, body, hdr...)
}

// send is sendE as the admin, failing the test on a transport error.
func (s *testServer) send(t testing.TB, method, path string, body any, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := s.sendE(s.token, method, path, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, b
}

// mustSend is send that also requires the status want.
func (s *testServer) mustSend(t testing.TB, want int, method, path string, body any, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	resp, b := s.send(t, method, path, body, hdr...)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	return resp, b
}

func decodeAs[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, body, err)
	}
	return v
}

func userUpdate(u client.User, name string) client.UserUpdate {
	return client.UserUpdate{Email: u.Email, Name: name}
}

func vehicleUpdate(v client.Vehicle, model string, owner *int64) client.VehicleUpdate {
	return client.VehicleUpdate{LicensePlate: v.LicensePlate, Make: v.Make, Model: model, UserId: owner, Vin: v.Vin, Year: v.Year}
}

// TestCacheXCache: every cached read says miss the first time and hit the second.
func TestCacheXCache(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		u := mustUser(t, s, "ada@example.com")
		v := mustVehicle(t, s, u.Id, 1)
		for _, path := range []string{
			fmt.Sprintf("/users/%d", u.Id),
			fmt.Sprintf("/vehicles/%d", v.Id),
			"/users",
			"/users?email=ada@example.com",
			"/vehicles",
			fmt.Sprintf("/vehicles?userId=%d", u.Id),
			fmt.Sprintf("/users/%d/vehicles", u.Id),
		} {
			r1, b1 := s.mustSend(t, http.StatusOK, "GET", path, nil)
			r2, b2 := s.mustSend(t, http.StatusOK, "GET", path, nil)
			if got := r1.Header.Get("X-Cache"); got != "miss" {
				t.Errorf("GET %s first: X-Cache %q, want miss", path, got)
			}
			if got := r2.Header.Get("X-Cache"); got != "hit" {
				t.Errorf("GET %s second: X-Cache %q, want hit", path, got)
			}
			if !bytes.Equal(b1, b2) {
				t.Errorf("GET %s: the hit's body differs from the miss's:\n%s\n%s", path, b1, b2)
			}
			if ct := r2.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("GET %s hit: Content-Type %q", path, ct)
			}
		}
		// Uncached answers carry no X-Cache.
		if r, _ := s.mustSend(t, http.StatusOK, "GET", "/auth/me", nil); r.Header.Get("X-Cache") != "" {
			t.Errorf("/auth/me has X-Cache %q", r.Header.Get("X-Cache"))
		}
	})
}

// TestCacheETag: single-resource GETs carry a strong ETag; If-None-Match answers 304 while it
// is current (also as a weak tag, in a list, or as *), and 200 with a new tag after a write.
func TestCacheETag(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		u := mustUser(t, s, "ada@example.com")
		v := mustVehicle(t, s, u.Id, 1)
		for _, tc := range []struct {
			path  string
			write func()
		}{
			{fmt.Sprintf("/users/%d", u.Id), func() {
				s.mustSend(t, http.StatusOK, "PUT", fmt.Sprintf("/users/%d", u.Id), userUpdate(u, "Ada Renamed"))
			}},
			{fmt.Sprintf("/vehicles/%d", v.Id), func() {
				s.mustSend(t, http.StatusOK, "PUT", fmt.Sprintf("/vehicles/%d", v.Id), vehicleUpdate(v, "Yaris", nil))
			}},
		} {
			r, body := s.mustSend(t, http.StatusOK, "GET", tc.path, nil)
			e1 := r.Header.Get("ETag")
			if !regexp.MustCompile(`^"[^"]+"$`).MatchString(e1) {
				t.Fatalf("GET %s: ETag %q is not a strong entity tag", tc.path, e1)
			}
			// Miss and hit agree on the tag.
			if r, _ := s.mustSend(t, http.StatusOK, "GET", tc.path, nil); r.Header.Get("ETag") != e1 {
				t.Errorf("GET %s: hit ETag %q != miss ETag %q", tc.path, r.Header.Get("ETag"), e1)
			}
			for _, inm := range []string{e1, "W/" + e1, `"nope", ` + e1, "*"} {
				r, b := s.send(t, "GET", tc.path, nil, "If-None-Match", inm)
				if r.StatusCode != http.StatusNotModified || len(b) != 0 {
					t.Errorf("GET %s If-None-Match %s: %d %q, want 304 with no body", tc.path, inm, r.StatusCode, b)
				}
				if r.Header.Get("ETag") != e1 {
					t.Errorf("GET %s If-None-Match %s: 304 ETag %q, want %q", tc.path, inm, r.Header.Get("ETag"), e1)
				}
			}
			if r, b := s.send(t, "GET", tc.path, nil, "If-None-Match", `"something-else"`); r.StatusCode != http.StatusOK || !bytes.Equal(b, body) {
				t.Errorf("GET %s with a foreign tag: %d %s, want 200 and the body", tc.path, r.StatusCode, b)
			}

			tc.write()
			r, _ = s.send(t, "GET", tc.path, nil, "If-None-Match", e1)
			e2 := r.Header.Get("ETag")
			if r.StatusCode != http.StatusOK || e2 == "" || e2 == e1 {
				t.Fatalf("GET %s with the old ETag after a write: %d ETag %q (old %q), want 200 and a new tag", tc.path, r.StatusCode, e2, e1)
			}
			for _, inm := range []string{e2, "W/" + e2, "*"} {
				if r, _ := s.send(t, "GET", tc.path, nil, "If-None-Match", inm); r.StatusCode != http.StatusNotModified || r.Header.Get("ETag") != e2 {
					t.Errorf("GET %s If-None-Match %s after the write: %d ETag %q, want 304 %s", tc.path, inm, r.StatusCode, r.Header.Get("ETag"), e2)
				}
			}
		}
	})
}

// vkEntry is one cache key as Valkey holds it.
type vkEntry struct {
	val  string
	pttl int64 // ms; -1: no TTL
}

// isCacheKey tells the cache's keys from the other state kinds' (sessions, tokens, buckets)
// under the shared prefix.
func isCacheKey(name string) bool {
	for _, p := range []string{"user:", "users:all", "vehicle:", "vehicles:all", "vehicles:user:"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// cacheSnapshot reads every cache key under vc's prefix, with its value and PTTL, named
// without the prefix.
func cacheSnapshot(t testing.TB, vc *valkey.Client) map[string]vkEntry {
	t.Helper()
	ctx := context.Background()
	vk := vc.Valkey()
	out := map[string]vkEntry{}
	var cursor uint64
	for {
		e, err := vk.Do(ctx, vk.B().Scan().Cursor(cursor).Match(vc.KeyPrefix()+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range e.Elements {
			name := strings.TrimPrefix(k, vc.KeyPrefix())
			if !isCacheKey(name) {
				continue
			}
			rs := vk.DoMulti(ctx, vk.B().Get().Key(k).Build(), vk.B().Pttl().Key(k).Build())
			val, err := rs[0].ToString()
			if valkeygo.IsValkeyNil(err) {
				continue // expired or deleted meanwhile
			}
			if err != nil {
				t.Fatalf("GET %s: %v", k, err)
			}
			pttl, err := rs[1].AsInt64()
			if err != nil {
				t.Fatalf("PTTL %s: %v", k, err)
			}
			out[name] = vkEntry{val: val, pttl: pttl}
		}
		if e.Cursor == 0 {
			return out
		}
		cursor = e.Cursor
	}
}

// pageKeys returns the names of family's page entries at its current version in snap.
func pageKeys(t testing.TB, snap map[string]vkEntry, family string) []string {
	t.Helper()
	v, ok := snap[family]
	if !ok {
		t.Fatalf("family %s has no version key", family)
	}
	if _, err := strconv.ParseInt(v.val, 10, 64); err != nil || v.pttl != -1 {
		t.Errorf("family %s version = %q (PTTL %d), want a decimal integer without a TTL", family, v.val, v.pttl)
	}
	ver, _ := strconv.ParseInt(v.val, 10, 64)
	prefix := storage.FamilyKey(family, ver, "")
	var out []string
	for k := range snap {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// checkEntry checks that name holds a value whose response bytes are body, with a PTTL of ttl
// ±10% (less what has elapsed since).
func checkEntry(t testing.TB, snap map[string]vkEntry, name string, ttl time.Duration, kind byte, body []byte) {
	t.Helper()
	e, ok := snap[name]
	if !ok {
		t.Errorf("key %s is missing", name)
		return
	}
	lo, hi := (ttl*9/10 - 5*time.Second).Milliseconds(), (ttl * 11 / 10).Milliseconds()
	if e.pttl < lo || e.pttl > hi {
		t.Errorf("key %s: PTTL %d ms, want %v ±10%% (%d..%d)", name, e.pttl, ttl, lo, hi)
	}
	// The layout: the backend's value tag 'v', the decorator's kind byte, the response bytes.
	if len(e.val) < 2 || e.val[0] != 'v' || e.val[1] != kind || e.val[2:] != string(body) {
		t.Errorf("key %s = %q, want %q", name, e.val, "v"+string(kind)+string(body))
	}
}

// checkInvalidated compares snapshots taken before and after one write: each key in gone was
// cached and is no more, each family in bumped has a higher version, and every other cache
// key is untouched.
func checkInvalidated(t testing.TB, write string, before, after map[string]vkEntry, gone, bumped []string) {
	t.Helper()
	for _, k := range gone {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: setup: %s was not cached before the write", write, k)
		}
		if _, ok := after[k]; ok {
			t.Errorf("%s: %s survived; want it invalidated", write, k)
		}
	}
	for _, f := range bumped {
		b, ok1 := before[f]
		a, ok2 := after[f]
		bv, _ := strconv.ParseInt(b.val, 10, 64)
		av, _ := strconv.ParseInt(a.val, 10, 64)
		if !ok1 || !ok2 || av <= bv {
			t.Errorf("%s: family %s version %q → %q; want it bumped", write, f, b.val, a.val)
		}
	}
	for k, b := range before {
		if slices.Contains(gone, k) || slices.Contains(bumped, k) {
			continue
		}
		if a, ok := after[k]; !ok {
			t.Errorf("%s: %s was invalidated; the rules do not name it", write, k)
		} else if a.val != b.val {
			t.Errorf("%s: %s changed from %q to %q", write, k, b.val, a.val)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: %s appeared", write, k)
		}
	}
}

// TestCacheKeyTable reads the plan's key table straight out of Valkey: each read leaves its key
// with its TTL (jittered ±10%) and the response bytes; each write invalidates exactly the keys
// and families the rules name, and nothing else.
func TestCacheKeyTable(t *testing.T) {
	b := backends["production"](t)
	s := newTestServer(t, b)
	vc := b.valkey
	a := mustUser(t, s, "ada@example.com")
	bob := mustUser(t, s, "bob@example.com")
	va1 := mustVehicle(t, s, a.Id, 1)
	va2 := mustVehicle(t, s, a.Id, 2)
	vb := mustVehicle(t, s, bob.Id, 3)

	ttl := planTTLs()
	type read struct {
		path string
		key  string // "" for a page of family
		fam  string
		ttl  time.Duration
		kind byte
	}
	reads := []read{
		{path: fmt.Sprintf("/users/%d", a.Id), key: fmt.Sprintf("user:%d", a.Id), ttl: ttl.User, kind: 'j'},
		{path: "/users", fam: "users:all", ttl: ttl.UserList, kind: 'j'},
		{path: "/users?email=ADA@Example.com", key: "user:email:ada@example.com", ttl: ttl.User, kind: 'j'},
		{path: fmt.Sprintf("/vehicles/%d", va1.Id), key: fmt.Sprintf("vehicle:%d", va1.Id), ttl: ttl.Vehicle, kind: 'j'},
		{path: "/vehicles", fam: "vehicles:all", ttl: ttl.VehList, kind: 'j'},
		{path: fmt.Sprintf("/users/%d/vehicles", a.Id), fam: fmt.Sprintf("vehicles:user:%d", a.Id), ttl: ttl.UserVehs, kind: 'j'},
		{path: "/users/999999", key: "user:999999", ttl: ttl.NotFound, kind: 'n'},
		{path: "/vehicles/999999", key: "vehicle:999999", ttl: ttl.NotFound, kind: 'n'},
		{path: "/users/999999/vehicles", fam: "vehicles:user:999999", ttl: ttl.NotFound, kind: 'n'},
	}
	for _, r := range reads {
		before := cacheSnapshot(t, vc)
		resp, body := s.send(t, "GET", r.path, nil)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s: %d %s", r.path, resp.StatusCode, body)
		}
		after := cacheSnapshot(t, vc)
		key := r.key
		if key == "" {
			pages := pageKeys(t, after, r.fam)
			if len(pages) != 1 {
				t.Errorf("GET %s: pages of %s = %v, want one", r.path, r.fam, pages)
				continue
			}
			key = pages[0]
		}
		checkEntry(t, after, key, r.ttl, r.kind, body)
		// The read added its entry (and its family's version) and nothing else.
		for k := range after {
			if _, ok := before[k]; !ok && k != key && k != r.fam {
				t.Errorf("GET %s added %s too", r.path, k)
			}
		}
	}

	// Writes. Before each, warm every read that shows the records still there, plus the
	// write's own extras (negative entries it must clear); snapshot, write, snapshot, compare.
	idPath := func(f string, id int64) string { return fmt.Sprintf(f, id) }
	type rec struct{ users, vehicles []int64 }
	live := rec{users: []int64{a.Id, bob.Id}, vehicles: []int64{va1.Id, va2.Id, vb.Id}}
	emails := map[int64]string{a.Id: "ada@example.com", bob.Id: "bob@example.com"}
	warm := func(extra ...string) map[string]vkEntry {
		t.Helper()
		paths := []string{"/users", "/vehicles"}
		for _, id := range live.users {
			paths = append(paths, idPath("/users/%d", id), idPath("/users/%d/vehicles", id), "/users?email="+emails[id])
		}
		for _, id := range live.vehicles {
			paths = append(paths, idPath("/vehicles/%d", id))
		}
		for _, p := range append(paths, extra...) {
			if r, body := s.send(t, "GET", p, nil); r.StatusCode != http.StatusOK && r.StatusCode != http.StatusNotFound {
				t.Fatalf("warm GET %s: %d %s", p, r.StatusCode, body)
			}
		}
		return cacheSnapshot(t, vc)
	}
	step := func(name string, extra []string, write func(), gone, bumped []string) {
		t.Helper()
		before := warm(extra...)
		write()
		checkInvalidated(t, name, before, cacheSnapshot(t, vc), gone, bumped)
	}
	uk := func(id int64) string { return fmt.Sprintf("user:%d", id) }
	vk := func(id int64) string { return fmt.Sprintf("vehicle:%d", id) }
	uv := func(id int64) string { return fmt.Sprintf("vehicles:user:%d", id) }

	// Create a user: users:all, and the 404 of the id it takes and the empty answer for its email.
	var c client.User
	nextUser := bob.Id + 1
	step("create user", []string{idPath("/users/%d", nextUser), idPath("/users/%d/vehicles", nextUser), "/users?email=cy@example.com"}, func() {
		c = mustUser(t, s, "cy@example.com")
		if c.Id != nextUser {
			t.Fatalf("setup: the new user got id %d, want %d", c.Id, nextUser)
		}
	}, []string{uk(nextUser), "user:email:cy@example.com"}, []string{"users:all", uv(nextUser)})

	// Update a user's name and email: user:{id}, the old and the new email, users:all.
	step("update user", []string{"/users?email=ada2@example.com"}, func() {
		s.mustSend(t, http.StatusOK, "PUT", idPath("/users/%d", a.Id), client.UserUpdate{Email: "Ada2@example.com", Name: "Ada Two"})
	}, []string{uk(a.Id), "user:email:ada@example.com", "user:email:ada2@example.com"}, []string{"users:all"})
	emails[a.Id] = "ada2@example.com"

	// Create a vehicle: its 404, vehicles:all, the owner's list.
	var va3 client.Vehicle
	nextVehicle := vb.Id + 1
	step("create vehicle", []string{idPath("/vehicles/%d", nextVehicle)}, func() {
		va3 = mustVehicle(t, s, a.Id, 4)
		if va3.Id != nextVehicle {
			t.Fatalf("setup: the new vehicle got id %d, want %d", va3.Id, nextVehicle)
		}
	}, []string{vk(nextVehicle)}, []string{"vehicles:all", uv(a.Id)})
	live.vehicles = append(live.vehicles, va3.Id)

	// Update a vehicle, same owner: vehicle:{id}, vehicles:all, the owner's list only.
	step("update vehicle", nil, func() {
		s.mustSend(t, http.StatusOK, "PUT", idPath("/vehicles/%d", vb.Id), vehicleUpdate(vb, "Yaris", nil))
	}, []string{vk(vb.Id)}, []string{"vehicles:all", uv(bob.Id)})

	// Give a vehicle to another owner: both owners' lists.
	step("update vehicle owner", nil, func() {
		s.mustSend(t, http.StatusOK, "PUT", idPath("/vehicles/%d", va1.Id), vehicleUpdate(va1, "Corolla", &bob.Id))
	}, []string{vk(va1.Id)}, []string{"vehicles:all", uv(a.Id), uv(bob.Id)})

	// Delete a vehicle: vehicle:{id}, vehicles:all, the owner's list.
	step("delete vehicle", nil, func() {
		s.mustSend(t, http.StatusNoContent, "DELETE", idPath("/vehicles/%d", vb.Id), nil)
	}, []string{vk(vb.Id)}, []string{"vehicles:all", uv(bob.Id)})
	live.vehicles = slices.DeleteFunc(live.vehicles, func(id int64) bool { return id == vb.Id })

	// Delete a user: everything that mentions them, their vehicles included (va2, va3; va1 is
	// bob's now and stays).
	step("delete user", nil, func() {
		s.mustSend(t, http.StatusNoContent, "DELETE", idPath("/users/%d", a.Id), nil)
	}, []string{uk(a.Id), "user:email:ada2@example.com", vk(va2.Id), vk(va3.Id)},
		[]string{"users:all", "vehicles:all", uv(a.Id)})

	// And the deleted user reads as 404 everywhere, through the cache.
	for _, p := range []string{idPath("/users/%d", a.Id), idPath("/users/%d/vehicles", a.Id), idPath("/vehicles/%d", va2.Id)} {
		s.mustSend(t, http.StatusNotFound, "GET", p, nil)
	}
}

// planTTLs is the plan's table, spelled out here rather than read from impl so that a
// change of the defaults shows as a failure.
func planTTLs() struct{ User, UserList, Vehicle, VehList, UserVehs, NotFound time.Duration } {
	return struct{ User, UserList, Vehicle, VehList, UserVehs, NotFound time.Duration }{
		User: 10 * time.Minute, UserList: 5 * time.Minute, Vehicle: 10 * time.Minute,
		VehList: 5 * time.Minute, UserVehs: 10 * time.Minute, NotFound: 30 * time.Second,
	}
}

// TestCacheNegative: a 404 is cached, and the create that fills its id clears it.
func TestCacheNegative(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		u := mustUser(t, s, "ada@example.com")
		next := fmt.Sprintf("/users/%d", u.Id+1)
		r1, _ := s.mustSend(t, http.StatusNotFound, "GET", next, nil)
		r2, b2 := s.mustSend(t, http.StatusNotFound, "GET", next, nil)
		if r1.Header.Get("X-Cache") != "miss" || r2.Header.Get("X-Cache") != "hit" {
			t.Errorf("404s: X-Cache %q then %q, want miss then hit", r1.Header.Get("X-Cache"), r2.Header.Get("X-Cache"))
		}
		decodeProblem(t, r2, b2)
		// The same for the email lookup (an empty page) and the user's vehicles (404).
		s.mustSend(t, http.StatusOK, "GET", "/users?email=bob@example.com", nil)
		s.mustSend(t, http.StatusNotFound, "GET", next+"/vehicles", nil)

		bob := mustUser(t, s, "bob@example.com")
		if fmt.Sprintf("/users/%d", bob.Id) != next {
			t.Fatalf("setup: the new user got id %d, want %s", bob.Id, next)
		}
		r, b := s.mustSend(t, http.StatusOK, "GET", next, nil)
		if got := decodeAs[client.User](t, b); got.Email != "bob@example.com" || r.Header.Get("X-Cache") != "miss" {
			t.Errorf("GET %s after the create: %s (X-Cache %q)", next, b, r.Header.Get("X-Cache"))
		}
		_, b = s.mustSend(t, http.StatusOK, "GET", "/users?email=bob@example.com", nil)
		if p := decodeAs[client.UserPage](t, b); len(p.Items) != 1 || p.Items[0].Id != bob.Id {
			t.Errorf("email lookup after the create: %s", b)
		}
		// A user who exists but has no vehicles: an empty page, no longer the cached 404.
		s.mustSend(t, http.StatusOK, "GET", next+"/vehicles", nil)
	})
}

// TestCacheAuthorizationFirst: a warm cache never lets a member see what they could not see
// cold, and the refusal does not go through the cache.
func TestCacheAuthorizationFirst(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		a := mustUser(t, s, "ada@example.com")
		b, bTok, _ := s.member(t, "bob@example.com")
		aPath := fmt.Sprintf("/users/%d", a.Id)
		for _, p := range []string{aPath, "/users", "/users?email=ada@example.com"} {
			s.mustSend(t, http.StatusOK, "GET", p, nil)
			if r, _ := s.mustSend(t, http.StatusOK, "GET", p, nil); r.Header.Get("X-Cache") != "hit" {
				t.Fatalf("setup: %s not warm", p)
			}
			r, body, err := s.sendE(bTok, "GET", p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("member GET %s with a warm cache: %d %s, want 403", p, r.StatusCode, body)
			}
			if x := r.Header.Get("X-Cache"); x != "" {
				t.Errorf("member GET %s: 403 carries X-Cache %q", p, x)
			}
			if strings.Contains(string(body), "ada@example.com") {
				t.Errorf("member GET %s leaked the cached record: %s", p, body)
			}
			// Revalidation is no side door either.
			r, body, _ = s.sendE(bTok, "GET", p, nil, "If-None-Match", "*")
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("member GET %s If-None-Match *: %d %s, want 403", p, r.StatusCode, body)
			}
		}
		for i := range 2 {
			r, body, err := s.sendE(bTok, "GET", fmt.Sprintf("/users/%d", b.Id), nil)
			if err != nil || r.StatusCode != http.StatusOK || decodeAs[client.User](t, body).Id != b.Id {
				t.Fatalf("member GET own record: %v %d %s", err, r.StatusCode, body)
			}
			if want := []string{"miss", "hit"}[i]; r.Header.Get("X-Cache") != want {
				t.Errorf("member GET own record #%d: X-Cache %q, want %s", i+1, r.Header.Get("X-Cache"), want)
			}
		}
	})
}

// TestCacheReadYourOwnWrite: a GET right after a PUT returns the PUT's data, every time.
func TestCacheReadYourOwnWrite(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		u := mustUser(t, s, "ada@example.com")
		path := fmt.Sprintf("/users/%d", u.Id)
		v := mustVehicle(t, s, u.Id, 1)
		vpath := fmt.Sprintf("/vehicles/%d", v.Id)
		for i := range 100 {
			name := fmt.Sprintf("Ada %d", i)
			s.mustSend(t, http.StatusOK, "GET", path, nil) // warm: the old value is cached
			s.mustSend(t, http.StatusOK, "PUT", path, userUpdate(u, name))
			if _, b := s.mustSend(t, http.StatusOK, "GET", path, nil); decodeAs[client.User](t, b).Name != name {
				t.Fatalf("round %d: GET after PUT returned %s, want name %q", i, b, name)
			}
			if i%10 == 0 { // lists and vehicles too, less often
				_, b := s.mustSend(t, http.StatusOK, "GET", "/users", nil)
				p := decodeAs[client.UserPage](t, b)
				if j := slices.IndexFunc(p.Items, func(x client.User) bool { return x.Id == u.Id }); j < 0 || p.Items[j].Name != name {
					t.Fatalf("round %d: GET /users after PUT: %s", i, b)
				}
				model := fmt.Sprintf("Model %d", i)
				s.mustSend(t, http.StatusOK, "GET", vpath, nil)
				s.mustSend(t, http.StatusOK, "PUT", vpath, vehicleUpdate(v, model, nil))
				if _, b := s.mustSend(t, http.StatusOK, "GET", vpath, nil); decodeAs[client.Vehicle](t, b).Model != model {
					t.Fatalf("round %d: GET vehicle after PUT: %s", i, b)
				}
			}
		}
	})
}

// gateStore holds the first GetUser of id after arm: it reads the row, reports it on read,
// and returns only when release is closed, like a reader stalled between the database and
// the cache.
type gateStore struct {
	storage.Store
	mu      sync.Mutex
	id      int64
	armed   bool
	read    chan storage.User
	release chan struct{}
}

func (g *gateStore) arm(id int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.id, g.armed = id, true
	g.read, g.release = make(chan storage.User, 1), make(chan struct{})
}

func (g *gateStore) GetUser(ctx context.Context, id int64) (storage.User, error) {
	g.mu.Lock()
	hold := g.armed && id == g.id
	if hold {
		g.armed = false
	}
	read, release := g.read, g.release
	g.mu.Unlock()
	u, err := g.Store.GetUser(ctx, id)
	if hold {
		read <- u
		<-release
	}
	return u, err
}

// TestCacheNoStaleSet, deterministically: a fill that read the row before a write commits and
// invalidates must not store it afterwards.
func TestCacheNoStaleSet(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		b := newBackend(t)
		gate := &gateStore{Store: b.store}
		b.store = gate
		s := newTestServer(t, b)
		u := mustUser(t, s, "ada@example.com")
		path := fmt.Sprintf("/users/%d", u.Id)

		for round := range 3 {
			oldName, newName := fmt.Sprintf("Old %d", round), fmt.Sprintf("New %d", round)
			s.mustSend(t, http.StatusOK, "PUT", path, userUpdate(u, oldName))
			gate.arm(u.Id)
			type answer struct {
				code int
				body []byte
				err  error
			}
			slow := make(chan answer, 1)
			go func() {
				r, body, err := s.sendE(s.token, "GET", path, nil)
				if err != nil {
					slow <- answer{err: err}
					return
				}
				slow <- answer{code: r.StatusCode, body: body}
			}()
			select {
			case got := <-gate.read:
				if got.Name != oldName {
					t.Fatalf("setup: the stalled fill read %q, want %q", got.Name, oldName)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the GET never reached the store")
			}
			// The write commits and invalidates while the fill holds the old row.
			s.mustSend(t, http.StatusOK, "PUT", path, userUpdate(u, newName))
			close(gate.release)
			a := <-slow
			if a.err != nil || a.code != http.StatusOK {
				t.Fatalf("the stalled GET: %v %d %s", a.err, a.code, a.body)
			}
			// It may answer with what it read; nothing after it may.
			for i := range 3 {
				r, body := s.mustSend(t, http.StatusOK, "GET", path, nil)
				if got := decodeAs[client.User](t, body).Name; got != newName {
					t.Fatalf("round %d: GET #%d after the write returned %q (X-Cache %s), want %q: the stale fill was stored",
						round, i+1, got, r.Header.Get("X-Cache"), newName)
				}
			}
			if b.valkey != nil {
				raw, err := b.valkey.Valkey().Do(context.Background(), b.valkey.Valkey().B().Get().Key(b.valkey.Key(fmt.Sprintf("user:%d", u.Id))).Build()).ToString()
				if err != nil || !strings.Contains(raw, newName) {
					t.Errorf("round %d: Valkey holds %q (%v), want the new name", round, raw, err)
				}
			}
		}
	})
}

// countStore counts GetUser calls for one id, each made slow so that concurrent requests
// overlap it.
type countStore struct {
	storage.Store
	id    atomic.Int64
	n     atomic.Int64
	delay time.Duration
}

func (c *countStore) GetUser(ctx context.Context, id int64) (storage.User, error) {
	if id == c.id.Load() {
		c.n.Add(1)
		time.Sleep(c.delay)
	}
	return c.Store.GetUser(ctx, id)
}

// concurrentGets fires n GETs of path at s at once (as the admin) and checks each is 200.
func concurrentGets(t *testing.T, s *testServer, path string, n int, start <-chan struct{}, wg *sync.WaitGroup) {
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, body, err := s.sendE(s.token, "GET", path, nil)
			if err != nil || r.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %v %v %s", path, err, r, body)
			}
		}()
	}
}

// TestCacheStampede: concurrent misses on one key cost one database query per instance, and
// on a shared Valkey one across instances (the lease).
func TestCacheStampede(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		b := newBackend(t)
		cs := &countStore{Store: b.store, delay: 100 * time.Millisecond}
		b.store = cs
		s := newTestServer(t, b)
		u := mustUser(t, s, "ada@example.com")
		cs.id.Store(u.Id)
		start := make(chan struct{})
		var wg sync.WaitGroup
		concurrentGets(t, s, fmt.Sprintf("/users/%d", u.Id), 50, start, &wg)
		close(start)
		wg.Wait()
		if n := cs.n.Load(); n != 1 {
			t.Errorf("50 concurrent GETs of an uncached user made %d store queries, want 1", n)
		}
	})
	t.Run("two instances", func(t *testing.T) {
		t.Parallel()
		var counts [2]*countStore
		inst := twoInstances(t, func(i int, st storage.Store) storage.Store {
			counts[i] = &countStore{Store: st, delay: 100 * time.Millisecond}
			return counts[i]
		})
		u := mustUser(t, inst[0], "ada@example.com")
		counts[0].id.Store(u.Id)
		counts[1].id.Store(u.Id)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for _, s := range inst {
			concurrentGets(t, s, fmt.Sprintf("/users/%d", u.Id), 50, start, &wg)
		}
		close(start)
		wg.Wait()
		n0, n1 := counts[0].n.Load(), counts[1].n.Load()
		t.Logf("store queries: instance 0: %d, instance 1: %d", n0, n1)
		if n0+n1 != 1 {
			t.Errorf("store queries per instance = %d, %d; want 1 in all (the lease holder's)", n0, n1)
		}
	})
}

// twoInstances builds two servers as two processes of one deployment: one PostgreSQL database,
// one Valkey key prefix, shared sessions (each has its own signing key, so each its own admin
// token), and a cache each (its own connection and client-side tier). wrap, when set, wraps
// each instance's store.
func twoInstances(t *testing.T, wrap func(i int, st storage.Store) storage.Store) [2]*testServer {
	t.Helper()
	vc := valkeytest.Open(t)
	pg := pgtest.Open(t)
	state := valkey.NewAuthState(vc)
	var out [2]*testServer
	for i := range out {
		b := observed(t, backend{store: pg, state: state, cache: openValkeyCache(t, vc.KeyPrefix(), nil), valkey: vc})
		if wrap != nil {
			b.store = wrap(i, b.store)
		}
		out[i] = newTestServer(t, b)
	}
	return out
}

func toGenUser(u storage.User) client.User {
	return client.User{Id: u.ID, Email: client.Email(u.Email), Name: u.Name, Role: client.Role(u.Role), CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func toGenVehicle(v storage.Vehicle) client.Vehicle {
	return client.Vehicle{Id: v.ID, UserId: v.UserID, Make: v.Make, Model: v.Model, Year: v.Year, Vin: v.VIN,
		LicensePlate: v.LicensePlate, Color: v.Color, CreatedAt: v.CreatedAt, UpdatedAt: v.UpdatedAt}
}

// TestCacheStress: goroutines write and read the same few users and vehicles on two instances
// sharing one PostgreSQL and one Valkey; once the writers stop, every read on either instance
// returns what the database holds.
func TestCacheStress(t *testing.T) {
	t.Parallel()
	inst := twoInstances(t, nil)
	ctx := context.Background()
	var users []client.User
	var vehicles []client.Vehicle
	for i := range 4 {
		u := mustUser(t, inst[0], fmt.Sprintf("user%d@example.com", i))
		users = append(users, u)
		vehicles = append(vehicles, mustVehicle(t, inst[0], u.Id, i+1))
	}
	var ops atomic.Int64
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for n := 0; time.Now().Before(deadline); n++ {
				s := inst[rng.IntN(2)]
				u := users[rng.IntN(len(users))]
				v := vehicles[rng.IntN(len(vehicles))]
				var (
					method, path string
					body         any
				)
				switch rng.IntN(6) {
				case 0:
					method, path, body = "PUT", fmt.Sprintf("/users/%d", u.Id), userUpdate(u, fmt.Sprintf("g%d n%d", g, n))
				case 1:
					owner := users[rng.IntN(len(users))].Id
					method, path, body = "PUT", fmt.Sprintf("/vehicles/%d", v.Id), vehicleUpdate(v, fmt.Sprintf("g%d n%d", g, n), &owner)
				case 2:
					method, path = "GET", "/users"
				case 3:
					method, path = "GET", fmt.Sprintf("/vehicles/%d", v.Id)
				case 4:
					method, path = "GET", fmt.Sprintf("/users/%d/vehicles", u.Id)
				default:
					method, path = "GET", fmt.Sprintf("/users/%d", u.Id)
				}
				r, b, err := s.sendE(s.token, method, path, body)
				if err != nil || r.StatusCode != http.StatusOK {
					t.Errorf("%s %s: %v %v %s", method, path, err, r, b)
					return
				}
				ops.Add(1)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests in 2 s on two instances", ops.Load())
	// Other instances hear of an invalidation asynchronously, within milliseconds.
	time.Sleep(100 * time.Millisecond)

	for i, s := range inst {
		for _, u := range users {
			want, err := s.Store.GetUser(ctx, u.Id)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // a miss or a hit, then surely a hit
				_, b := s.mustSend(t, http.StatusOK, "GET", fmt.Sprintf("/users/%d", u.Id), nil)
				if d := cmp.Diff(toGenUser(want), decodeAs[client.User](t, b)); d != "" {
					t.Errorf("instance %d GET /users/%d differs from the database (-db +api):\n%s", i, u.Id, d)
				}
			}
			wantVs, err := s.Store.ListVehicles(ctx, storage.VehicleFilter{UserID: &u.Id}, storage.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			wantPage := client.VehiclePage{Items: []client.Vehicle{}}
			for _, v := range wantVs {
				wantPage.Items = append(wantPage.Items, toGenVehicle(v))
			}
			for range 2 {
				_, b := s.mustSend(t, http.StatusOK, "GET", fmt.Sprintf("/users/%d/vehicles", u.Id), nil)
				if d := cmp.Diff(wantPage, decodeAs[client.VehiclePage](t, b)); d != "" {
					t.Errorf("instance %d GET /users/%d/vehicles differs from the database (-db +api):\n%s", i, u.Id, d)
				}
			}
		}
		for _, v := range vehicles {
			want, err := s.Store.GetVehicle(ctx, v.Id)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				_, b := s.mustSend(t, http.StatusOK, "GET", fmt.Sprintf("/vehicles/%d", v.Id), nil)
				if d := cmp.Diff(toGenVehicle(want), decodeAs[client.Vehicle](t, b)); d != "" {
					t.Errorf("instance %d GET /vehicles/%d differs from the database (-db +api):\n%s", i, v.Id, d)
				}
			}
		}
		dbUsers, err := s.Store.ListUsers(ctx, storage.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		wantUsers := client.UserPage{Items: []client.User{}}
		for _, u := range dbUsers {
			wantUsers.Items = append(wantUsers.Items, toGenUser(u))
		}
		dbVehicles, err := s.Store.ListVehicles(ctx, storage.VehicleFilter{}, storage.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		wantVehicles := client.VehiclePage{Items: []client.Vehicle{}}
		for _, v := range dbVehicles {
			wantVehicles.Items = append(wantVehicles.Items, toGenVehicle(v))
		}
		for range 2 {
			_, b := s.mustSend(t, http.StatusOK, "GET", "/users", nil)
			if d := cmp.Diff(wantUsers, decodeAs[client.UserPage](t, b)); d != "" {
				t.Errorf("instance %d GET /users differs from the database (-db +api):\n%s", i, d)
			}
			_, b = s.mustSend(t, http.StatusOK, "GET", "/vehicles", nil)
			if d := cmp.Diff(wantVehicles, decodeAs[client.VehiclePage](t, b)); d != "" {
				t.Errorf("instance %d GET /vehicles differs from the database (-db +api):\n%s", i, d)
			}
		}
	}
}

// TestCacheValkeyOutage: with the cache's Valkey gone, reads fall through to the database
// promptly and never fail; a write still commits, and its invalidation is kept and retried
// until the server is back, meanwhile the instance does not serve the affected keys from the
// cache. Sessions are in process here, so only the cache loses its server.
func TestCacheValkeyOutage(t *testing.T) {
	t.Parallel()
	addr, stop := startValkey(t)
	ctx := context.Background()
	cache, err := valkey.OpenCache(ctx, valkey.Config{Addrs: []string{addr}, KeyPrefix: "motorpool_outage:",
		DialTimeout: 300 * time.Millisecond, CommandTimeout: 300 * time.Millisecond}, valkey.CacheOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close() })
	state := memory.NewAuthState(nil)
	t.Cleanup(func() { _ = state.Close() })
	s := newTestServer(t, backend{store: pgtest.Open(t), state: state, cache: cache})
	u := mustUser(t, s, "ada@example.com")
	v := mustVehicle(t, s, u.Id, 1)
	paths := []string{fmt.Sprintf("/users/%d", u.Id), fmt.Sprintf("/vehicles/%d", v.Id), "/users", "/vehicles", fmt.Sprintf("/users/%d/vehicles", u.Id)}
	for _, p := range paths {
		s.mustSend(t, http.StatusOK, "GET", p, nil)
		if r, _ := s.mustSend(t, http.StatusOK, "GET", p, nil); r.Header.Get("X-Cache") != "hit" {
			t.Fatalf("setup: GET %s not cached", p)
		}
	}

	stop()
	// The client notices the closed connection at once and drops its local tier with it (a
	// request in that instant may still be served from it, as it would have been a moment
	// before): from then on nothing can invalidate that tier, so nothing may be served from it.
	time.Sleep(100 * time.Millisecond)
	get := func(p string) (*http.Response, []byte) {
		t.Helper()
		start := time.Now()
		r, b := s.send(t, "GET", p, nil)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("GET %s with Valkey down took %v, want < 2 s", p, took)
		}
		if r.StatusCode != http.StatusOK {
			t.Errorf("GET %s with Valkey down: %d %s, want 200", p, r.StatusCode, b)
		}
		return r, b
	}
	for round := range 3 {
		for _, p := range paths {
			r, _ := get(p)
			// Single records say miss; a list whose family version cannot be read is served
			// uncached and may carry no X-Cache at all. Never hit: the local tier was dropped
			// with the connection, as nothing could invalidate it now.
			if x := r.Header.Get("X-Cache"); x == "hit" || (x == "" && !strings.HasPrefix(p, "/users") && !strings.HasPrefix(p, "/vehicles")) {
				t.Errorf("round %d: GET %s with Valkey down: X-Cache %q, want miss", round, p, x)
			}
		}
	}
	r, b := s.send(t, "PUT", paths[0], userUpdate(u, "Ada Offline"))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("PUT with Valkey down: %d %s, want 200 (the write commits)", r.StatusCode, b)
	}
	if n := s.Inval.Pending(); n == 0 {
		t.Fatal("PendingInvalidations() = 0 after a write whose invalidation could not reach Valkey")
	}
	if _, b := get(paths[0]); decodeAs[client.User](t, b).Name != "Ada Offline" {
		t.Errorf("GET after the offline write: %s, want the new name", b)
	}

	port, _ := strconv.Atoi(addr[strings.LastIndex(addr, ":")+1:])
	runValkeyOn(t, port)
	deadline := time.Now().Add(10 * time.Second)
	for s.Inval.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("PendingInvalidations() = %d 10 s after Valkey came back", s.Inval.Pending())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The cache works again: miss then hit, with the database's values.
	for i, want := range []string{"miss", "hit"} {
		r, b := s.mustSend(t, http.StatusOK, "GET", paths[0], nil)
		if decodeAs[client.User](t, b).Name != "Ada Offline" {
			t.Errorf("GET #%d after Valkey came back: %s, want the new name", i+1, b)
		}
		if r.Header.Get("X-Cache") != want {
			t.Logf("GET #%d after Valkey came back: X-Cache %q (want %s once the breaker has closed)", i+1, r.Header.Get("X-Cache"), want)
		}
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if r, _ := s.mustSend(t, http.StatusOK, "GET", paths[0], nil); r.Header.Get("X-Cache") == "hit" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no cache hit 10 s after Valkey came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(s.Logs.String(), `"status":500`) || strings.Contains(s.Logs.String(), `"status":503`) {
		t.Errorf("a 5xx was logged:\n%s", s.Logs.String())
	}
}

// TestCacheMetrics: /metrics counts cache events per key family and the hit ratio.
func TestCacheMetrics(t *testing.T) {
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		b := newBackend(t)
		m := api.NewMetrics(nil)
		if b.valkey == nil {
			b.cache = memory.NewCache(memory.CacheConfig{Observer: m})
		} else {
			c, err := valkey.OpenCache(context.Background(), valkey.Config{Addrs: []string{valkeyAddr()}, KeyPrefix: b.valkey.KeyPrefix()},
				valkey.CacheOptions{Observer: m})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			b.cache = c
		}
		b.store, b.inv = b.plain, nil // newTestServer invalidates the new cache
		s := newTestServer(t, b)
		// The handler under test serves its own registry; this one serves the registry the
		// cache reports to.
		h, err := api.NewHandler(s.Cached, api.Config{Auth: s.Auth, Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		u := mustUser(t, s, "ada@example.com")
		v := mustVehicle(t, s, u.Id, 1)
		for range 3 {
			for _, p := range []string{fmt.Sprintf("/users/%d", u.Id), "/users", fmt.Sprintf("/vehicles/%d", v.Id), "/vehicles",
				fmt.Sprintf("/users/%d/vehicles", u.Id), "/users?email=ada@example.com"} {
				s.mustSend(t, http.StatusOK, "GET", p, nil)
			}
		}
		s.mustSend(t, http.StatusOK, "PUT", fmt.Sprintf("/users/%d", u.Id), userUpdate(u, "Ada Metered"))

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body := rec.Body.String()
		hit := "hit_local"
		if b.valkey != nil {
			hit = "hit_(local|remote)"
		}
		for _, want := range []struct{ family, event string }{
			{"user", "miss"}, {"user", hit}, {"user", "fill"}, {"user", "invalidate"},
			{"users:all", "miss"}, {"users:all", hit}, {"users:all", "invalidate"},
			{"user:email", "miss"}, {"user:email", hit}, {"user:email", "invalidate"},
			{"vehicle", "miss"}, {"vehicle", hit}, {"vehicle", "invalidate"},
			{"vehicles:all", "miss"}, {"vehicles:all", hit}, {"vehicles:all", "invalidate"},
			{"vehicles:user", "miss"}, {"vehicles:user", hit}, {"vehicles:user", "invalidate"},
		} {
			re := regexp.MustCompile(`(?m)^motorpool_cache_events_total\{event="` + want.event + `",family="` + regexp.QuoteMeta(want.family) + `"\} [1-9]`)
			if !re.MatchString(body) {
				t.Errorf("/metrics lacks a positive motorpool_cache_events_total{event=%q,family=%q}", want.event, want.family)
			}
		}
		re := regexp.MustCompile(`(?m)^motorpool_cache_hit_ratio ([0-9.e+-]+)$`)
		if mm := re.FindStringSubmatch(body); mm == nil {
			t.Errorf("/metrics lacks motorpool_cache_hit_ratio")
		} else if r, _ := strconv.ParseFloat(mm[1], 64); r <= 0.3 || r >= 1 {
			t.Errorf("motorpool_cache_hit_ratio = %v, want about 2/3 (each read repeated three times)", r)
		}
		if t.Failed() {
			t.Logf("/metrics:\n%s", grepLines(body, "motorpool_cache"))
		}
	})
}

func valkeyAddr() string {
	if a := os.Getenv("TEST_VALKEY_ADDR"); a != "" {
		return a
	}
	return valkey.DefaultAddr
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
