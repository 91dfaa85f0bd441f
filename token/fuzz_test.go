package token_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/motorpool/motorpool/token"
)

// fuzzSeed is a fixed key, so seeds signed with it stay valid across runs and the fuzzer can
// mutate genuinely signed tokens rather than only garbage.
var fuzzSeed = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// FuzzVerify checks that Verify never panics and that whatever it accepts is well formed.
// `go test` runs the seeds; `go test -fuzz=FuzzVerify ./token/` explores further.
func FuzzVerify(f *testing.F) {
	key, err := token.ParsePrivateKeyPEM(privatePEM(f, fuzzSeed), "")
	if err != nil {
		f.Fatal(err)
	}
	clock := &fakeClock{t: epoch}
	iss := newIssuer(f, testConfig(clock), key)

	access, _, err := iss.Issue(42, "sess-1", "user", token.Access, time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	refresh, _, err := iss.Issue(42, "sess-1", "user", token.Refresh, time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	hdr := header(key, "at+jwt")
	for _, seed := range []string{
		access,
		refresh,
		craft(f, hdr, claims(epoch, token.Access), edSigner(fuzzSeed)),
		craft(f, map[string]any{"alg": "none"}, claims(epoch, token.Access), nil),
		craft(f, map[string]any{"alg": "HS256", "kid": key.ID(), "typ": "at+jwt"}, claims(epoch, token.Access), hsSigner([]byte("k"))),
		craft(f, map[string]any{"alg": "EdDSA", "kid": key.ID(), "typ": "at+jwt", "crit": []string{"b64"}, "b64": false}, claims(epoch, token.Access), edSigner(fuzzSeed)),
		craft(f, hdr, map[string]any{"exp": 1e300, "iat": -1e300, "sub": "9223372036854775808"}, edSigner(fuzzSeed)),
		craft(f, hdr, map[string]any{"aud": []any{nil, 1, map[string]any{}}, "sid": []string{}}, edSigner(fuzzSeed)),
		`{"payload":"e30","signatures":[{"protected":"e30","signature":"AA"}]}`,
		"",
		".",
		"..",
		"a.b.c",
		"e30.e30.e30",
		"eyJhbGciOiJFZERTQSJ9.bnVsbA.AA",
		"\x00\xff.\xfe.",
	} {
		f.Add(seed, true)
		f.Add(seed, false)
	}

	f.Fuzz(func(t *testing.T, tok string, wantAccess bool) {
		want := token.Refresh
		if wantAccess {
			want = token.Access
		}
		c, err := iss.Verify(tok, want)
		if err != nil {
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// Only a genuinely signed token can get here; its claims must be complete.
		// Subject 0 is legitimate only in a service access token.
		if c.Type != want || c.Subject < 0 || c.Subject == 0 && (c.Role != token.RoleService || c.Type != token.Access) || c.SessionID == "" || c.ID == "" || c.Role == "" || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted token with incomplete claims: %+v", c)
		}
	})
}

// FuzzVerifySigned signs arbitrary header and payload bytes with the configured key, so the
// fuzzer reaches the claim parsing and validation behind the signature check, which
// FuzzVerify's mutations of whole tokens almost never get past.
func FuzzVerifySigned(f *testing.F) {
	key, err := token.ParsePrivateKeyPEM(privatePEM(f, fuzzSeed), "")
	if err != nil {
		f.Fatal(err)
	}
	iss := newIssuer(f, testConfig(&fakeClock{t: epoch}), key)
	hdr := `{"alg":"EdDSA","kid":"` + key.ID() + `","typ":"at+jwt"}`
	for _, payload := range []string{
		string(mustJSON(f, claims(epoch, token.Access))),
		`{}`,
		`null`,
		`[]`,
		`{"exp":"2030-01-02T03:04:05Z","iat":1e400,"sub":"1","aud":[]}`,
		`{"iss":"https://motorpool.test","aud":"motorpool-api","exp":1,"sub":"-0","sid":{},"typ":"access"}`,
	} {
		f.Add([]byte(hdr), []byte(payload))
	}
	f.Fuzz(func(t *testing.T, hdr, payload []byte) {
		input := b64(hdr) + "." + b64(payload)
		tok := input + "." + b64(ed25519.Sign(fuzzSeed, []byte(input)))
		c, err := iss.Verify(tok, token.Access)
		if err != nil {
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		// Subject 0 is legitimate only in a service access token.
		if c.Type != token.Access || c.Subject < 0 || c.Subject == 0 && c.Role != token.RoleService || c.SessionID == "" || c.ID == "" || c.Role == "" || c.ExpiresAt.IsZero() {
			t.Fatalf("accepted token with incomplete claims: %+v", c)
		}
	})
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
