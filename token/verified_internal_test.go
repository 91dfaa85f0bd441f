package token

import (
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"
)

// TestVerifiedCacheBounded: however many tokens are verified, the cache holds at most its
// size, and an expired entry makes way before a live one.
func TestVerifiedCacheBounded(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newVerifiedCache(verifiedShards * 4)
	for i := range 10_000 {
		var k [32]byte
		_, _ = rand.Read(k[:])
		c.put(k, Access, Claims{Subject: int64(i), ExpiresAt: now.Add(time.Hour)}, now)
	}
	if n := c.len(); n > verifiedShards*4 {
		t.Errorf("cache holds %d entries, want at most %d", n, verifiedShards*4)
	}

	// One shard, full of entries expired but one live: the live one survives the next put.
	c = newVerifiedCache(verifiedShards * 4)
	key := func(shard, i byte) (k [32]byte) { k[0], k[1] = shard, i; return k }
	live := key(0, 0)
	c.put(live, Access, Claims{ExpiresAt: now.Add(time.Hour)}, now)
	for i := byte(1); i < 4; i++ {
		c.put(key(0, i), Access, Claims{ExpiresAt: now.Add(time.Minute)}, now)
	}
	later := now.Add(2 * time.Minute)
	c.put(key(0, 9), Access, Claims{ExpiresAt: now.Add(time.Hour)}, later)
	if _, ok := c.get(live, Access, later); !ok {
		t.Error("a live entry was evicted while expired ones were there")
	}
}

// TestVerifyRemembers: Verify remembers a token it accepted, and not one it refused.
func TestVerifyRemembers(t *testing.T) {
	k, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(Config{Issuer: "i", Audience: "a", AccessTTL: time.Minute, RefreshTTL: time.Hour}, k)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := iss.Issue(1, "s", "user", Access, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Verify(tok+"x", Access); err == nil {
		t.Fatal("a broken token verified")
	}
	if n := iss.verified.len(); n != 0 {
		t.Errorf("%d entries after a refused token, want 0", n)
	}
	if _, err := iss.Verify(tok, Access); err != nil {
		t.Fatal(err)
	}
	if _, ok := iss.verified.get(tokenKey(tok), Access, time.Now()); !ok {
		t.Error("an accepted token was not remembered")
	}
}
