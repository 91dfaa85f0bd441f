package token_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/token"
)

// TestVerifiedCacheNeverServesForgeries: once a genuine token is verified (and remembered), a
// token that differs from it in any way, tampered or signed by another key under the same
// kid, is still refused: the cache is keyed by the whole compact token.
func TestVerifiedCacheNeverServesForgeries(t *testing.T) {
	clock := &fakeClock{t: epoch}
	_, k := edKey(t, "k1")
	iss := newIssuer(t, testConfig(clock), k)
	tok, want, err := iss.Issue(42, "sess-1", "user", token.Access, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second from the cache
		got, err := iss.Verify(tok, token.Access)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
	}

	hdr, payload, sig := segments(t, tok)
	flip := func(s string, i int) string {
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		return s[:i] + string(c) + s[i+1:]
	}
	claimsAs := decodeSegment(t, payload)
	claimsAs["role"] = "admin"
	attackerPriv, _ := edKey(t, "k1")
	forged := craft(t, decodeSegment(t, hdr), decodeSegment(t, payload), edSigner(attackerPriv))
	for name, bad := range map[string]string{
		"signature tampered":              hdr + "." + payload + "." + flip(sig, len(sig)/2),
		"claims tampered (admin)":         hdr + "." + b64JSON(t, claimsAs) + "." + sig,
		"same claims, another key":        forged,
		"genuine with a trailing byte":    tok + "A",
		"genuine with the header changed": flip(hdr, 3) + "." + payload + "." + sig,
	} {
		if _, err := iss.Verify(bad, token.Access); err == nil {
			t.Errorf("%s: accepted after the genuine token was cached", name)
		}
	}
	if strings.Compare(forged, tok) == 0 {
		t.Fatal("the forged token equals the genuine one: the test proves nothing")
	}
	// And the genuine one as the other type: refused.
	if _, err := iss.Verify(tok, token.Refresh); err == nil {
		t.Error("a cached access token was accepted as a refresh token")
	}
}

// TestVerifiedCacheClock: a remembered token is not served past its exp (the full check then
// applies the skew and refuses it past exp+skew), nor before the time it was verified (a clock
// set back before iat-skew refuses it, as without the cache).
func TestVerifiedCacheClock(t *testing.T) {
	clock := &fakeClock{t: epoch}
	_, k := edKey(t, "k1")
	cfg := testConfig(clock)
	iss := newIssuer(t, cfg, k)
	tok, c, err := iss.Issue(42, "sess-1", "user", token.Access, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Verify(tok, token.Access); err != nil {
		t.Fatal(err)
	}
	clock.t = c.ExpiresAt.Add(-time.Second)
	if _, err := iss.Verify(tok, token.Access); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	clock.t = c.ExpiresAt.Add(token.DefaultSkew + time.Second)
	wantInvalid(t, mustFail(iss.Verify(tok, token.Access)), "exp")
	clock.t = c.IssuedAt.Add(-token.DefaultSkew - time.Minute)
	wantInvalid(t, mustFail(iss.Verify(tok, token.Access)), "iat")
}

func mustFail(_ token.Claims, err error) error { return err }

// TestVerifiedCacheConcurrent: many goroutines verifying the same and different tokens at once
// (run with -race) all get the right claims.
func TestVerifiedCacheConcurrent(t *testing.T) {
	clock := &fakeClock{t: epoch}
	_, k := edKey(t, "k1")
	cfg := testConfig(clock)
	cfg.VerifiedCacheSize = 64 // small, so eviction runs too
	iss := newIssuer(t, cfg, k)
	toks := make([]string, 100)
	claims := make([]token.Claims, 100)
	for i := range toks {
		var err error
		if toks[i], claims[i], err = iss.Issue(int64(i+1), "s", "user", token.Access, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for r := range 300 {
				i := (g*31 + r*7) % len(toks)
				got, err := iss.Verify(toks[i], token.Access)
				if err != nil || got != claims[i] {
					t.Errorf("token %d: %+v, %v; want %+v", i, got, err, claims[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkVerify: the full EdDSA check against the same token answered from the cache.
func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"full", -1}, {"cached", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			_, k := edKey(b, "k1")
			cfg := token.Config{Issuer: testIssuer, Audience: testAudience, AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour, VerifiedCacheSize: bc.size}
			iss := newIssuer(b, cfg, k)
			tok, _, err := iss.Issue(42, "sess-1", "user", token.Access, time.Time{})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := iss.Verify(tok, token.Access); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
