package token_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/token"
)

const (
	testIssuer   = "https://motorpool.test"
	testAudience = "motorpool-api"
)

// epoch is a fixed, second-aligned instant so claims compare exactly.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a settable clock; tests are sequential within one issuer, so no locking.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func pemBlock(tb testing.TB, typ string, der []byte) []byte {
	tb.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func privatePEM(tb testing.TB, priv any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return pemBlock(tb, "PRIVATE KEY", der)
}

func publicPEM(tb testing.TB, pub any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return pemBlock(tb, "PUBLIC KEY", der)
}

// edKey returns a fresh Ed25519 key as raw private key and as a token.Key (kid "" derives it).
func edKey(tb testing.TB, kid string) (ed25519.PrivateKey, token.Key) {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := token.ParsePrivateKeyPEM(privatePEM(tb, priv), kid)
	if err != nil {
		tb.Fatal(err)
	}
	return priv, k
}

// esKey returns a fresh P-256 key as raw private key and as a token.Key.
func esKey(tb testing.TB, kid string) (*ecdsa.PrivateKey, token.Key) {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	k, err := token.ParsePrivateKeyPEM(privatePEM(tb, priv), kid)
	if err != nil {
		tb.Fatal(err)
	}
	return priv, k
}

func testConfig(clock *fakeClock) token.Config {
	return token.Config{
		Issuer:     testIssuer,
		Audience:   testAudience,
		AccessTTL:  15 * time.Minute,
		RefreshTTL: 30 * 24 * time.Hour,
		Now:        clock.Now,
	}
}

func newIssuer(tb testing.TB, cfg token.Config, signing token.Key, verifyOnly ...token.Key) *token.Issuer {
	tb.Helper()
	iss, err := token.NewIssuer(cfg, signing, verifyOnly...)
	if err != nil {
		tb.Fatal(err)
	}
	return iss
}

// signer produces the raw JWS signature over the signing input.
type signer func(tb testing.TB, input []byte) []byte

func edSigner(priv ed25519.PrivateKey) signer {
	return func(tb testing.TB, input []byte) []byte { return ed25519.Sign(priv, input) }
}

func hsSigner(secret []byte) signer {
	return func(tb testing.TB, input []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b64(b)
}

// craft builds a compact JWS by hand, so tests can produce tokens this package would never
// issue. A nil sign leaves the signature part empty.
func craft(tb testing.TB, hdr, claims map[string]any, sign signer) string {
	tb.Helper()
	input := b64JSON(tb, hdr) + "." + b64JSON(tb, claims)
	if sign == nil {
		return input + "."
	}
	return input + "." + b64(sign(tb, []byte(input)))
}

// header is a valid protected header for the key and token type.
func header(k token.Key, typ string) map[string]any {
	return map[string]any{"alg": k.Algorithm(), "kid": k.ID(), "typ": typ}
}

// claims is a valid claim set at now; tests edit a copy.
func claims(now time.Time, typ token.Type) map[string]any {
	return map[string]any{
		"iss":  testIssuer,
		"aud":  testAudience,
		"sub":  "42",
		"sid":  "sess-1",
		"jti":  "AAAAAAAAAAAAAAAAAAAAAA",
		"role": "user",
		"typ":  string(typ),
		"iat":  now.Unix(),
		"nbf":  now.Unix(),
		"exp":  now.Add(10 * time.Minute).Unix(),
	}
}

// segments splits a compact token.
func segments(tb testing.TB, tok string) (hdr, payload, sig string) {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("token %q has %d parts", tok, len(parts))
	}
	return parts[0], parts[1], parts[2]
}

func decodeSegment(tb testing.TB, seg string) map[string]any {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// wantInvalid checks that err is ErrInvalid and, so that a test cannot pass for the wrong
// reason, that its message mentions reason.
func wantInvalid(tb testing.TB, err error, reason string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("Verify accepted the token; want ErrInvalid (%s)", reason)
	}
	if !errors.Is(err, token.ErrInvalid) {
		tb.Fatalf("err = %v; want it to wrap ErrInvalid", err)
	}
	tb.Logf("refused: %v", err)
	if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(reason)) {
		tb.Fatalf("err = %v; want reason containing %q", err, reason)
	}
}
