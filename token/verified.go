package token

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultVerifiedCacheSize is how many verified tokens an Issuer remembers when
// Config.VerifiedCacheSize is zero: one per signed-in caller of a busy instance.
const DefaultVerifiedCacheSize = 100_000

const verifiedShards = 32

// verifiedCache remembers tokens that passed Verify, so that the next Verify of the very same
// compact token skips the signature check (EdDSA: most of a warm request's CPU). It is keyed
// by the SHA-256 of the whole compact token, so a token that differs in any byte (tampered,
// or signed by another key) is a different entry and goes through the full check. An entry
// is served only at or after the time it was verified (nbf and iat held then, so they hold
// later) and strictly before exp (past it, the full check applies the skew rules). It is
// bounded: each shard holds at most size/verifiedShards entries, dropping expired ones first,
// then arbitrary ones. Safe for concurrent use.
type verifiedCache struct {
	shards   [verifiedShards]verifiedShard
	perShard int
}

type verifiedShard struct {
	mu sync.RWMutex
	m  map[[32]byte]verifiedEntry
}

type verifiedEntry struct {
	claims     Claims
	want       Type
	verifiedAt time.Time
}

func newVerifiedCache(size int) *verifiedCache {
	c := &verifiedCache{perShard: max(size/verifiedShards, 1)}
	for i := range c.shards {
		c.shards[i].m = make(map[[32]byte]verifiedEntry)
	}
	return c
}

func (c *verifiedCache) shard(k [32]byte) *verifiedShard { return &c.shards[k[0]%verifiedShards] }

// get returns the claims of token if it was verified as want and may still be served at now.
func (c *verifiedCache) get(k [32]byte, want Type, now time.Time) (Claims, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[k]
	s.mu.RUnlock()
	if !ok || e.want != want || now.Before(e.verifiedAt) || !now.Before(e.claims.ExpiresAt) {
		return Claims{}, false
	}
	return e.claims, true
}

// put remembers claims, verified as want at now, under k.
func (c *verifiedCache) put(k [32]byte, want Type, claims Claims, now time.Time) {
	if !now.Before(claims.ExpiresAt) {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= c.perShard {
		s.evict(now)
	}
	s.m[k] = verifiedEntry{claims: claims, want: want, verifiedAt: now}
}

// evict makes room in a full shard, in O(1): of a few entries sampled (Go's map iteration
// starts at a random place), the expired ones go, or if none is, the first. The caller holds
// s.mu.
func (s *verifiedShard) evict(now time.Time) {
	const sample = 8
	var first [32]byte
	n, freed := 0, false
	for k, e := range s.m {
		if n == 0 {
			first = k
		}
		if !now.Before(e.claims.ExpiresAt) {
			delete(s.m, k)
			freed = true
		}
		if n++; n == sample {
			break
		}
	}
	if !freed {
		delete(s.m, first)
	}
}

// len is the number of entries, for tests.
func (c *verifiedCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.RLock()
		n += len(c.shards[i].m)
		c.shards[i].mu.RUnlock()
	}
	return n
}

func tokenKey(token string) [32]byte { return sha256.Sum256([]byte(token)) }
