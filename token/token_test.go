package token_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/motorpool/motorpool/token"
)

func TestRoundTrip(t *testing.T) {
	_, ed := edKey(t, "")
	_, es := esKey(t, "es-1")
	for _, tc := range []struct {
		name       string
		key        token.Key
		typ        token.Type
		headerType string
		ttl        time.Duration
	}{
		{"EdDSA access", ed, token.Access, "at+jwt", 15 * time.Minute},
		{"EdDSA refresh", ed, token.Refresh, "rt+jwt", 30 * 24 * time.Hour},
		{"ES256 access", es, token.Access, "at+jwt", 15 * time.Minute},
		{"ES256 refresh", es, token.Refresh, "rt+jwt", 30 * 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: epoch.Add(300 * time.Millisecond)} // sub-second part is dropped
			iss := newIssuer(t, testConfig(clock), tc.key)

			tok, issued, err := iss.Issue(7, "sid-abc", "admin", tc.typ, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			want := token.Claims{
				Subject:   7,
				SessionID: "sid-abc",
				ID:        issued.ID,
				Role:      "admin",
				Type:      tc.typ,
				IssuedAt:  epoch,
				NotBefore: epoch,
				ExpiresAt: epoch.Add(tc.ttl),
			}
			if diff := cmp.Diff(want, issued); diff != "" {
				t.Errorf("Issue claims (-want +got):\n%s", diff)
			}
			if len(issued.ID) < 22 { // 128 bits in base64url
				t.Errorf("jti %q shorter than 128 bits", issued.ID)
			}

			got, err := iss.Verify(tok, tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(issued, got); diff != "" {
				t.Errorf("Verify claims (-issued +verified):\n%s", diff)
			}

			hdr, payload, _ := segments(t, tok)
			wantHdr := map[string]any{"alg": tc.key.Algorithm(), "kid": tc.key.ID(), "typ": tc.headerType}
			if diff := cmp.Diff(wantHdr, decodeSegment(t, hdr)); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			wantPayload := map[string]any{
				"iss": testIssuer, "aud": testAudience, "sub": "7", "sid": "sid-abc", "jti": issued.ID,
				"role": "admin", "typ": string(tc.typ), "iat": float64(epoch.Unix()),
				"nbf": float64(epoch.Unix()), "exp": float64(epoch.Add(tc.ttl).Unix()),
			}
			if diff := cmp.Diff(wantPayload, decodeSegment(t, payload)); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIssueUniqueJTI(t *testing.T) {
	_, k := edKey(t, "")
	iss := newIssuer(t, testConfig(&fakeClock{t: epoch}), k)
	seen := map[string]bool{}
	for range 100 {
		_, c, err := iss.Issue(1, "s", "user", token.Access, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.ID] {
			t.Fatalf("jti %q repeated", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestIssueExpiry(t *testing.T) {
	_, k := edKey(t, "")
	clock := &fakeClock{t: epoch}
	iss := newIssuer(t, testConfig(clock), k)
	ttl := 30 * 24 * time.Hour

	for _, tc := range []struct {
		name      string
		expiresAt time.Time
		want      time.Time
	}{
		{"zero means TTL", time.Time{}, epoch.Add(ttl)},
		{"cap before TTL wins", epoch.Add(time.Hour + 500*time.Millisecond), epoch.Add(time.Hour)},
		{"cap after TTL is clamped", epoch.Add(2 * ttl), epoch.Add(ttl)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, c, err := iss.Issue(1, "s", "user", token.Refresh, tc.expiresAt)
			if err != nil {
				t.Fatal(err)
			}
			if !c.ExpiresAt.Equal(tc.want) {
				t.Errorf("ExpiresAt = %v, want %v", c.ExpiresAt, tc.want)
			}
			got, err := iss.Verify(tok, token.Refresh)
			if err != nil {
				t.Fatal(err)
			}
			if !got.ExpiresAt.Equal(tc.want) {
				t.Errorf("verified ExpiresAt = %v, want %v", got.ExpiresAt, tc.want)
			}
		})
	}

	t.Run("cap reached", func(t *testing.T) {
		for _, cap := range []time.Time{epoch, epoch.Add(-time.Minute), epoch.Add(500 * time.Millisecond)} {
			if _, _, err := iss.Issue(1, "s", "user", token.Refresh, cap); err == nil {
				t.Errorf("Issue with cap %v succeeded", cap)
			}
		}
	})
}

func TestIssueRejectsBadInput(t *testing.T) {
	_, k := edKey(t, "")
	iss := newIssuer(t, testConfig(&fakeClock{t: epoch}), k)
	for _, tc := range []struct {
		name      string
		uid       int64
		sid, role string
		typ       token.Type
	}{
		{"zero user", 0, "s", "user", token.Access},
		{"negative user", -1, "s", "user", token.Access},
		{"empty sid", 1, "", "user", token.Access},
		{"empty role", 1, "s", "", token.Access},
		{"unknown type", 1, "s", "user", token.Type("id")},
		{"empty type", 1, "s", "user", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := iss.Issue(tc.uid, tc.sid, tc.role, tc.typ, time.Time{}); err == nil {
				t.Error("Issue succeeded")
			}
		})
	}
}

// TestVerifyRejects covers the ways a token can be wrong. Each case names the reason it must
// fail for, so a case cannot pass because of an unrelated defect in how it was built.
func TestVerifyRejects(t *testing.T) {
	edPriv, ed := edKey(t, "")
	clock := &fakeClock{t: epoch}
	cfg := testConfig(clock)
	iss := newIssuer(t, cfg, ed)
	access, _, err := iss.Issue(42, "sess-1", "user", token.Access, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	refresh, _, err := iss.Issue(42, "sess-1", "user", token.Refresh, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	aHdr, aPayload, aSig := segments(t, access)

	// with returns the valid claims with changes applied; a nil value deletes the claim.
	with := func(typ token.Type, changes map[string]any) map[string]any {
		c := claims(epoch, typ)
		for k, v := range changes {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	signed := func(changes map[string]any) string {
		return craft(t, header(ed, "at+jwt"), with(token.Access, changes), edSigner(edPriv))
	}
	hdrWith := func(changes map[string]any) map[string]any {
		h := header(ed, "at+jwt")
		for k, v := range changes {
			if v == nil {
				delete(h, k)
			} else {
				h[k] = v
			}
		}
		return h
	}

	// A control: the hand-crafted token is valid, so each case below differs in one thing only.
	if _, err := iss.Verify(signed(nil), token.Access); err != nil {
		t.Fatalf("control token rejected: %v", err)
	}

	otherPriv, _ := edKey(t, ed.ID()) // another key that claims the same kid
	pubPEM, err := ed.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	jsonSerialized, err := jws.Sign([]byte(decodeSegmentRaw(t, aPayload)), jws.WithJSON(),
		jws.WithKey(jwa.EdDSA(), edPriv, jws.WithProtectedHeaders(mustHeaders(t, header(ed, "at+jwt")))))
	if err != nil {
		t.Fatal(err)
	}

	flip := func(s string, i int) string { // change one base64url character
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	for _, tc := range []struct {
		name   string
		tok    string
		want   token.Type
		reason string
	}{
		{"tampered payload", aHdr + "." + b64JSON(t, with(token.Access, map[string]any{"sub": "1"})) + "." + aSig, token.Access, "signature"},
		{"tampered payload, one char", aHdr + "." + flip(aPayload, 10) + "." + aSig, token.Access, "signature"},
		{"tampered signature", aHdr + "." + aPayload + "." + flip(aSig, 5), token.Access, "signature"},
		{"signature of another token", aHdr + "." + aPayload + "." + strings.Split(refresh, ".")[2], token.Access, "signature"},
		{"wrong issuer", signed(map[string]any{"iss": "https://evil.test"}), token.Access, "iss"},
		{"issuer differs in case", signed(map[string]any{"iss": strings.ToUpper(testIssuer)}), token.Access, "iss"},
		{"no issuer", signed(map[string]any{"iss": nil}), token.Access, "iss"},
		{"wrong audience", signed(map[string]any{"aud": "other-api"}), token.Access, "aud"},
		{"extra audience", signed(map[string]any{"aud": []string{testAudience, "other-api"}}), token.Access, "aud"},
		{"no audience", signed(map[string]any{"aud": nil}), token.Access, "aud"},
		{"missing exp", signed(map[string]any{"exp": nil}), token.Access, "exp"},
		{"missing iat", signed(map[string]any{"iat": nil}), token.Access, "iat"},
		{"exp not a number", signed(map[string]any{"exp": "tomorrow"}), token.Access, "exp"},
		{"expired beyond skew", signed(map[string]any{"exp": epoch.Add(-31 * time.Second).Unix()}), token.Access, "exp"},
		{"nbf in future beyond skew", signed(map[string]any{"nbf": epoch.Add(31 * time.Second).Unix()}), token.Access, "nbf"},
		{"iat in future beyond skew", signed(map[string]any{"iat": epoch.Add(31 * time.Second).Unix()}), token.Access, "iat"},
		{"sub not a number", signed(map[string]any{"sub": "alice"}), token.Access, "sub"},
		{"sub not canonical", signed(map[string]any{"sub": "042"}), token.Access, "sub"},
		{"sub with sign", signed(map[string]any{"sub": "+42"}), token.Access, "sub"},
		{"sub zero", signed(map[string]any{"sub": "0"}), token.Access, "sub"},
		{"sub missing", signed(map[string]any{"sub": nil}), token.Access, "sub"},
		{"sid missing", signed(map[string]any{"sid": nil}), token.Access, "sid"},
		{"sid not a string", signed(map[string]any{"sid": 5}), token.Access, "sid"},
		{"role missing", signed(map[string]any{"role": nil}), token.Access, "role"},
		{"jti missing", signed(map[string]any{"jti": nil}), token.Access, "jti"},

		// Algorithm attacks.
		{"alg none, unsigned", craft(t, hdrWith(map[string]any{"alg": "none"}), claims(epoch, token.Access), nil), token.Access, "empty part"},
		{"alg none, junk signature", craft(t, hdrWith(map[string]any{"alg": "none"}), claims(epoch, token.Access), hsSigner([]byte("x"))), token.Access, "not allowed"},
		{"alg None", craft(t, hdrWith(map[string]any{"alg": "None"}), claims(epoch, token.Access), hsSigner([]byte("x"))), token.Access, "not allowed"},
		{"HS256 keyed with public key PEM", craft(t, hdrWith(map[string]any{"alg": "HS256"}), claims(epoch, token.Access), hsSigner(pubPEM)), token.Access, "not allowed"},
		{"HS256 keyed with raw public key", craft(t, hdrWith(map[string]any{"alg": "HS256"}), claims(epoch, token.Access), hsSigner(edPriv.Public().(ed25519.PublicKey))), token.Access, "not allowed"},
		{"HS512", craft(t, hdrWith(map[string]any{"alg": "HS512"}), claims(epoch, token.Access), hsSigner(pubPEM)), token.Access, "not allowed"},
		{"ES256 header on an EdDSA key", craft(t, hdrWith(map[string]any{"alg": "ES256"}), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "does not match key"},
		{"Ed25519 alg name on an EdDSA key", craft(t, hdrWith(map[string]any{"alg": "Ed25519"}), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "does not match key"},
		{"no alg", craft(t, hdrWith(map[string]any{"alg": nil}), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "does not match key"},
		{"other key, same kid", craft(t, header(ed, "at+jwt"), claims(epoch, token.Access), edSigner(otherPriv)), token.Access, "signature"},
		{"unknown kid", craft(t, hdrWith(map[string]any{"kid": "nope"}), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "unknown kid"},
		{"missing kid", craft(t, hdrWith(map[string]any{"kid": nil}), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "no kid"},
		{"kid not a string", craft(t, hdrWith(map[string]any{"kid": 1}), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "header"},
		{"crit header", craft(t, hdrWith(map[string]any{"crit": []string{"exp"}, "exp": 1}), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "crit"},
		{"b64 false", craft(t, hdrWith(map[string]any{"b64": false}), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "b64"},

		// Type confusion, through the claim, the header, and both.
		{"access as refresh", access, token.Refresh, "typ"},
		{"refresh as access", refresh, token.Access, "typ"},
		{"access claim with refresh header, as refresh", craft(t, header(ed, "rt+jwt"), claims(epoch, token.Access), edSigner(edPriv)), token.Refresh, "typ"},
		{"refresh claim with access header, as access", craft(t, header(ed, "at+jwt"), claims(epoch, token.Refresh), edSigner(edPriv)), token.Access, "typ"},
		{"refresh claim with access header, as refresh", craft(t, header(ed, "at+jwt"), claims(epoch, token.Refresh), edSigner(edPriv)), token.Refresh, "typ"},
		{"access claim with refresh header, as access", craft(t, header(ed, "rt+jwt"), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "typ"},
		{"header typ JWT", craft(t, header(ed, "JWT"), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "typ"},
		{"no header typ", craft(t, hdrWith(map[string]any{"typ": nil}), claims(epoch, token.Access), edSigner(edPriv)), token.Access, "typ"},
		{"no typ claim", signed(map[string]any{"typ": nil}), token.Access, "typ"},
		{"unknown wanted type", access, token.Type("id"), "unknown wanted type"},

		// Serialization.
		{"JSON serialization", string(jsonSerialized), token.Access, "compact"},
		{"whitespace around", " " + access + "\n", token.Access, "base64url"},
		{"padded segment", aHdr + "=." + aPayload + "." + aSig, token.Access, "base64url"},
		{"four parts", access + ".x", token.Access, "compact"},
		{"too long", access + strings.Repeat("A", 9000), token.Access, "too long"},
		{"header not JSON", b64([]byte("hello")) + "." + aPayload + "." + aSig, token.Access, "header"},
		{"header JSON with trailing data", b64([]byte(`{"alg":"EdDSA"}{}`)) + "." + aPayload + "." + aSig, token.Access, "header"},
		{"empty string", "", token.Access, "compact"},
		{"dots only", "..", token.Access, "empty part"},
		{"garbage", "not a token", token.Access, "compact"},
		{"garbage three parts", "a.b.c", token.Access, "header"},
		{"bearer prefix", "Bearer " + access, token.Access, "base64url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := iss.Verify(tc.tok, tc.want)
			wantInvalid(t, err, tc.reason)
		})
	}
}

func decodeSegmentRaw(t *testing.T, seg string) string {
	t.Helper()
	b, err := json.Marshal(decodeSegment(t, seg))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mustHeaders(t *testing.T, m map[string]any) jws.Headers {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range m {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func TestVerifyClock(t *testing.T) {
	_, k := edKey(t, "")
	clock := &fakeClock{t: epoch}
	iss := newIssuer(t, testConfig(clock), k) // default skew: 30 s
	tok, c, err := iss.Issue(1, "s", "user", token.Access, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"at issue", epoch, true},
		{"just before exp", c.ExpiresAt.Add(-time.Second), true},
		{"expired within skew", c.ExpiresAt.Add(29 * time.Second), true},
		{"expired at skew", c.ExpiresAt.Add(30 * time.Second), false},
		{"expired beyond skew", c.ExpiresAt.Add(time.Hour), false},
		{"nbf/iat ahead within skew", epoch.Add(-29 * time.Second), true},
		{"nbf/iat ahead beyond skew", epoch.Add(-31 * time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock.t = tc.at
			_, err := iss.Verify(tok, token.Access)
			if tc.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tc.ok {
				wantInvalid(t, err, "")
			}
		})
	}

	t.Run("configured skew", func(t *testing.T) {
		cfg := testConfig(clock)
		cfg.Skew = 2 * time.Minute
		wide := newIssuer(t, cfg, k)
		clock.t = c.ExpiresAt.Add(90 * time.Second)
		if _, err := wide.Verify(tok, token.Access); err != nil {
			t.Fatalf("rejected within a 2 min skew: %v", err)
		}
		clock.t = c.ExpiresAt.Add(3 * time.Minute)
		_, err := wide.Verify(tok, token.Access)
		wantInvalid(t, err, "exp")
	})
}

func TestRotation(t *testing.T) {
	clock := &fakeClock{t: epoch}
	cfg := testConfig(clock)
	_, oldKey := edKey(t, "")
	_, newKey := esKey(t, "")

	before := newIssuer(t, cfg, oldKey)
	oldTok, oldClaims, err := before.Issue(5, "s", "user", token.Refresh, time.Time{})
	if err != nil {
		t.Fatal(err)
	}

	// The operator keeps only the old public key, as a PEM file.
	oldPEM, err := oldKey.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	oldPublic, err := token.ParsePublicKeyPEM(oldPEM, "")
	if err != nil {
		t.Fatal(err)
	}
	if oldPublic.ID() != oldKey.ID() || oldPublic.CanSign() {
		t.Fatalf("public key: id %q sign %v; want id %q and verify-only", oldPublic.ID(), oldPublic.CanSign(), oldKey.ID())
	}

	during := newIssuer(t, cfg, newKey, oldPublic)
	got, err := during.Verify(oldTok, token.Refresh)
	if err != nil {
		t.Fatalf("old token rejected while its key is configured: %v", err)
	}
	if diff := cmp.Diff(oldClaims, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	newTok, _, err := during.Issue(5, "s", "user", token.Access, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if kid := decodeSegment(t, strings.Split(newTok, ".")[0])["kid"]; kid != newKey.ID() {
		t.Errorf("new token kid = %v, want the new signing key %q", kid, newKey.ID())
	}
	if _, err := during.Verify(newTok, token.Access); err != nil {
		t.Fatal(err)
	}
	// The previous deployment does not know the new key.
	_, err = before.Verify(newTok, token.Access)
	wantInvalid(t, err, "unknown kid")

	after := newIssuer(t, cfg, newKey)
	_, err = after.Verify(oldTok, token.Refresh)
	wantInvalid(t, err, "unknown kid")
}

func TestNewIssuerErrors(t *testing.T) {
	clock := &fakeClock{t: epoch}
	_, k := edKey(t, "a")
	_, other := edKey(t, "a")
	_, b := esKey(t, "b")
	ok := testConfig(clock)
	for _, tc := range []struct {
		name    string
		edit    func(*token.Config)
		signing token.Key
		verify  []token.Key
	}{
		{"empty issuer", func(c *token.Config) { c.Issuer = "" }, k, nil},
		{"empty audience", func(c *token.Config) { c.Audience = "" }, k, nil},
		{"zero access TTL", func(c *token.Config) { c.AccessTTL = 0 }, k, nil},
		{"negative refresh TTL", func(c *token.Config) { c.RefreshTTL = -time.Second }, k, nil},
		{"negative skew", func(c *token.Config) { c.Skew = -time.Second }, k, nil},
		{"zero signing key", nil, token.Key{}, nil},
		{"verify-only signing key", nil, k.Public(), nil},
		{"zero verify key", nil, k, []token.Key{{}}},
		{"different keys, same kid", nil, k, []token.Key{other.Public()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			if _, err := token.NewIssuer(cfg, tc.signing, tc.verify...); err == nil {
				t.Error("NewIssuer succeeded")
			}
		})
	}

	t.Run("signing key repeated as verify-only is fine", func(t *testing.T) {
		iss := newIssuer(t, ok, k, k.Public(), b.Public())
		set := parseJWKS(t, iss)
		if got, want := set.Len(), 2; got != want {
			t.Errorf("JWKS has %d keys, want %d", got, want)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		cfg := ok
		cfg.Now = nil
		cfg.Skew = 0
		iss := newIssuer(t, cfg, k)
		tok, _, err := iss.Issue(1, "s", "user", token.Access, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := iss.Verify(tok, token.Access); err != nil {
			t.Fatalf("with the real clock: %v", err)
		}
	})
}

func parseJWKS(t *testing.T, iss *token.Issuer) jwk.Set {
	t.Helper()
	b, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatalf("JWKS %s: %v", b, err)
	}
	return set
}

func TestJWKS(t *testing.T) {
	clock := &fakeClock{t: epoch}
	cfg := testConfig(clock)
	_, signing := esKey(t, "")
	_, old := edKey(t, "old-1")
	iss := newIssuer(t, cfg, signing, old.Public())

	b, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	type summary struct{ Kid, Alg, Use, Kty string }
	var got []summary
	for _, k := range doc.Keys {
		for _, private := range []string{"d", "p", "q", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %v has private member %q", k["kid"], private)
			}
		}
		s := func(name string) string { v, _ := k[name].(string); return v }
		got = append(got, summary{s("kid"), s("alg"), s("use"), s("kty")})
	}
	want := []summary{
		{signing.ID(), "ES256", "sig", "EC"},
		{"old-1", "EdDSA", "sig", "OKP"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JWKS keys (-want +got):\n%s", diff)
	}

	// Another service holding only the JWKS can verify our tokens.
	set := parseJWKS(t, iss)
	tok, _, err := iss.Issue(3, "s", "user", token.Access, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseString(tok, jwt.WithKeySet(set), jwt.WithClock(jwt.ClockFunc(clock.Now)))
	if err != nil {
		t.Fatalf("verify with JWKS: %v", err)
	}
	if sub, _ := parsed.Subject(); sub != "3" {
		t.Errorf("sub = %q", sub)
	}
}

// TestConcurrentUse issues and verifies from many goroutines; run with -race.
func TestConcurrentUse(t *testing.T) {
	_, k := edKey(t, "")
	iss := newIssuer(t, testConfig(&fakeClock{t: epoch}), k)
	errs := make(chan error, 16)
	for g := range 16 {
		go func() {
			for range 20 {
				tok, want, err := iss.Issue(int64(g+1), "s", "user", token.Access, time.Time{})
				if err == nil {
					var got token.Claims
					got, err = iss.Verify(tok, token.Access)
					if err == nil && !cmp.Equal(want, got) {
						err = errors.New("claims differ")
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestHeaderTypeMediaForm: RFC 9068 lets the typ header be "application/at+jwt", and media
// types are case-insensitive; both spellings of our own type are accepted.
func TestHeaderTypeMediaForm(t *testing.T) {
	priv, k := edKey(t, "")
	iss := newIssuer(t, testConfig(&fakeClock{t: epoch}), k)
	for _, typ := range []string{"application/at+jwt", "AT+JWT", "Application/At+Jwt"} {
		tok := craft(t, header(k, typ), claims(epoch, token.Access), edSigner(priv))
		if _, err := iss.Verify(tok, token.Access); err != nil {
			t.Errorf("typ %q: %v", typ, err)
		}
	}
	tok := craft(t, header(k, "application/rt+jwt"), claims(epoch, token.Access), edSigner(priv))
	_, err := iss.Verify(tok, token.Access)
	wantInvalid(t, err, "typ")
}
