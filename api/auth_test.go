package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/client"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/token"
)

// ---- helpers shared by auth_test.go and authz_test.go ----

// rawBody is a request body sent byte for byte as application/json, valid JSON or not.
type rawBody string

// request sends one request through the contract-checking client. authz is the whole
// Authorization header ("" for none); body is sent as JSON unless nil (a rawBody as it is);
// hdr are extra header name/value pairs. It does not fail the test, so goroutines may call it.
func request(s *testServer, method, path, authz string, body any, hdr ...string) (*http.Response, []byte, error) {
	var rd io.Reader
	if raw, ok := body.(rawBody); ok {
		rd = strings.NewReader(string(raw))
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// send is request that fails the test on a transport error.
func send(t testing.TB, s *testServer, method, path, authz string, body any) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := request(s, method, path, authz, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, b
}

func bearer(tok string) string { return "Bearer " + tok }

// expect sends a request and checks its status.
func expect(t testing.TB, s *testServer, want int, method, path, authz string, body any) []byte {
	t.Helper()
	resp, b := send(t, s, method, path, authz, body)
	if resp.StatusCode != want {
		t.Errorf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

// getJSON GETs path with tok, wants 200 and decodes the body into v.
func getJSON(t testing.TB, s *testServer, path, tok string, v any) {
	t.Helper()
	resp, b := send(t, s, http.MethodGet, path, bearer(tok), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: decode %s: %v", path, b, err)
	}
}

// meStatus is the status GET /auth/me answers for tok: 200 while its session lives.
func meStatus(t testing.TB, s *testServer, tok string) int {
	t.Helper()
	resp, _ := send(t, s, http.MethodGet, "/auth/me", bearer(tok), nil)
	return resp.StatusCode
}

func wantAlive(t testing.TB, s *testServer, what, tok string) {
	t.Helper()
	if got := meStatus(t, s, tok); got != http.StatusOK {
		t.Errorf("%s: GET /auth/me = %d, want 200 (token still valid)", what, got)
	}
}

// wantDead checks that tok is refused: by GET /auth/me, and by GET /vehicles, which (unlike
// /auth/me) does not look the user up, so that only the token and its session decide.
func wantDead(t testing.TB, s *testServer, what, tok string) {
	t.Helper()
	if got := meStatus(t, s, tok); got != http.StatusUnauthorized {
		t.Errorf("%s: GET /auth/me = %d, want 401 (token refused)", what, got)
	}
	if resp, b := send(t, s, http.MethodGet, "/vehicles?limit=1", bearer(tok), nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("%s: GET /vehicles = %d, want 401 (token refused); %s", what, resp.StatusCode, b)
	}
}

// claimsOf verifies an access token with the server's issuer.
func claimsOf(t testing.TB, s *testServer, tok string) token.Claims {
	t.Helper()
	c, err := s.Issuer.Verify(tok, token.Access)
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	return c
}

// loginRaw posts a login and returns the response. The email is sent exactly as given (the
// generated client.Email would normalize it while marshalling).
func loginRaw(t testing.TB, s *testServer, email, password string) (*http.Response, []byte) {
	t.Helper()
	return send(t, s, http.MethodPost, "/auth/login", "", map[string]string{"email": email, "password": password})
}

// refreshRaw posts a refresh and returns the status and the new pair (zero unless 200).
func refreshRaw(s *testServer, refresh string) (int, client.TokenPair, error) {
	resp, b, err := request(s, http.MethodPost, "/auth/refresh", "", client.RefreshTokensJSONRequestBody{RefreshToken: refresh})
	if err != nil {
		return 0, client.TokenPair{}, err
	}
	var p client.TokenPair
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &p); err != nil {
			return 0, p, err
		}
	}
	return resp.StatusCode, p, nil
}

// fail5 makes exactly five failed logins for email, each of which must be 401.
func fail5(t testing.TB, s *testServer, email string) {
	t.Helper()
	for i := 1; i <= 5; i++ {
		if resp, b := loginRaw(t, s, email, "wrong password "+strconv.Itoa(i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failed login %d for %q: %d, want 401; %s", i, email, resp.StatusCode, b)
		}
	}
}

// wantLocked checks that a login (with the right password) is refused with 429 and an
// integer Retry-After of at least 1 and at most max seconds; it returns Retry-After and the body.
func wantLocked(t testing.TB, s *testServer, email, password string, max int) (int, []byte) {
	t.Helper()
	resp, b := loginRaw(t, s, email, password)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("login %q while locked: %d, want 429; %s", email, resp.StatusCode, b)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > max {
		t.Errorf("Retry-After = %q, want an integer in [1, %d]", resp.Header.Get("Retry-After"), max)
	}
	return ra, b
}

// sha256Hex is how the server names a reset token in the state store.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// requestReset asks for a reset link for email and returns the token in the link mailed to
// mailbox (email when empty).
func requestReset(t testing.TB, s *testServer, email string, mailbox ...string) string {
	t.Helper()
	to := email
	if len(mailbox) > 0 {
		to = mailbox[0]
	}
	mails := func() int {
		s.Mail.mu.Lock()
		defer s.Mail.mu.Unlock()
		return len(s.Mail.links[to])
	}
	before := mails()
	expect(t, s, http.StatusAccepted, http.MethodPost, "/auth/password-reset", "", client.RequestPasswordResetJSONRequestBody{Email: client.Email(email)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Auth.WaitMail(ctx); err != nil {
		t.Fatalf("wait for reset mail: %v", err)
	}
	if n := mails(); n != before+1 {
		t.Fatalf("reset for %s: %d new mails to %s, want 1", email, n-before, to)
	}
	link := s.Mail.last(to)
	if !strings.Contains(link, "token=") {
		t.Fatalf("reset link %q for %s has no token=", link, to)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	tok := u.Query().Get("token")
	if tok == "" {
		t.Fatalf("reset link %q: empty token", link)
	}
	return tok
}

// vkey gives raw access to the production backend's Valkey under the test's key prefix.
type vkey struct {
	c      valkeygo.Client
	prefix string
}

// valkeyOf returns the Valkey of s, or false on the embedded backend.
func valkeyOf(s *testServer) (vkey, bool) {
	if s.Backend.valkey == nil {
		return vkey{}, false
	}
	return vkey{c: s.Backend.valkey.Valkey(), prefix: s.Backend.valkey.KeyPrefix()}, true
}

func (v vkey) do(t testing.TB, cmd func(b valkeygo.Builder) valkeygo.Completed) valkeygo.ValkeyResult {
	t.Helper()
	return v.c.Do(context.Background(), cmd(v.c.B()))
}

// pttl is the key's PTTL: -2 when it does not exist, -1 when it has no expiry.
func (v vkey) pttl(t testing.TB, name string) time.Duration {
	t.Helper()
	n, err := v.do(t, func(b valkeygo.Builder) valkeygo.Completed { return b.Pttl().Key(v.prefix + name).Build() }).AsInt64()
	if err != nil {
		t.Fatalf("PTTL %s: %v", name, err)
	}
	if n < 0 {
		return time.Duration(n)
	}
	return time.Duration(n) * time.Millisecond
}

func (v vkey) exists(t testing.TB, name string) bool {
	t.Helper()
	n, err := v.do(t, func(b valkeygo.Builder) valkeygo.Completed { return b.Exists().Key(v.prefix + name).Build() }).AsInt64()
	if err != nil {
		t.Fatalf("EXISTS %s: %v", name, err)
	}
	return n == 1
}

func (v vkey) hgetall(t testing.TB, name string) map[string]string {
	t.Helper()
	m, err := v.do(t, func(b valkeygo.Builder) valkeygo.Completed { return b.Hgetall().Key(v.prefix + name).Build() }).AsStrMap()
	if err != nil {
		t.Fatalf("HGETALL %s: %v", name, err)
	}
	return m
}

func (v vkey) smembers(t testing.TB, name string) []string {
	t.Helper()
	m, err := v.do(t, func(b valkeygo.Builder) valkeygo.Completed { return b.Smembers().Key(v.prefix + name).Build() }).AsStrSlice()
	if err != nil {
		t.Fatalf("SMEMBERS %s: %v", name, err)
	}
	return m
}

func (v vkey) get(t testing.TB, name string) string {
	t.Helper()
	s, err := v.do(t, func(b valkeygo.Builder) valkeygo.Completed { return b.Get().Key(v.prefix + name).Build() }).ToString()
	if err != nil {
		t.Fatalf("GET %s: %v", name, err)
	}
	return s
}

// wantTTL checks that name exists with a TTL in (0, max].
func (v vkey) wantTTL(t testing.TB, name string, max time.Duration) {
	t.Helper()
	if got := v.pttl(t, name); got <= 0 || got > max {
		t.Errorf("PTTL %s = %v, want in (0, %v]", name, got, max)
	}
}

// ---- token crafting ----

// serverKey returns the private key newTestServer generated for the server of this test. The
// key file lives in one of this test's t.TempDir directories, which share a parent; there must
// be exactly one server per test for this to find it.
func serverKey(t testing.TB) (ed25519.PrivateKey, []byte) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(filepath.Dir(t.TempDir()), "*", "signing.pem"))
	if err != nil || len(files) != 1 {
		t.Fatalf("want exactly one server signing key in this test's temp dirs, found %v (%v)", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		t.Fatal("signing.pem holds no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		t.Fatalf("server key is %T, want ed25519", k)
	}
	return priv, data
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64url(b)
}

// craft builds a compact JWS from hdr and claims, signed by sign over "header.payload".
func craft(t testing.TB, hdr, claims map[string]any, sign func([]byte) []byte) string {
	t.Helper()
	in := b64json(t, hdr) + "." + b64json(t, claims)
	return in + "." + b64url(sign([]byte(in)))
}

// segment decodes one segment of a compact token as JSON.
func segment(t testing.TB, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not compact", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// flip changes the character in the middle of segment i of tok to another base64url one.
func flip(tok string, i int) string {
	parts := strings.Split(tok, ".")
	p := []byte(parts[i])
	j := len(p) / 2
	if p[j] == 'A' {
		p[j] = 'B'
	} else {
		p[j] = 'A'
	}
	parts[i] = string(p)
	return strings.Join(parts, ".")
}

// ---- tests ----

// TestAuthBadTokens: every kind of bad access token is refused with 401 (never 500) and a
// WWW-Authenticate that says invalid_token, while a control token crafted the same way with
// the server's own key works, so that each refusal is down to the one property changed.
func TestAuthBadTokens(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		priv, keyPEM := serverKey(t)
		ada, adaTok, _ := s.member(t, "ada@example.com")
		bob, _, _ := s.member(t, "bob@example.com")
		pair := s.login(t, "ada@example.com", testPassword)
		c := claimsOf(t, s, adaTok)
		kid, _ := segment(t, adaTok, 0)["kid"].(string)
		if kid == "" {
			t.Fatal("access token header has no kid")
		}
		realKey, err := token.ParsePrivateKeyPEM(keyPEM, "")
		if err != nil {
			t.Fatal(err)
		}
		if realKey.ID() != kid {
			t.Fatalf("server key kid %q != token kid %q: serverKey found the wrong key", realKey.ID(), kid)
		}
		otherKey, err := token.LoadOrCreateKey(filepath.Join(t.TempDir(), "other.pem"))
		if err != nil {
			t.Fatal(err)
		}
		_, otherPriv, _ := ed25519.GenerateKey(nil)
		der, _ := x509.MarshalPKCS8PrivateKey(otherPriv)
		sameKidOtherKey, err := token.ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), kid)
		if err != nil {
			t.Fatal(err)
		}

		cfg := token.Config{Issuer: "motorpool-test", Audience: "motorpool-api", AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour}
		issue := func(mod func(*token.Config), key token.Key) string {
			t.Helper()
			cfg := cfg
			if mod != nil {
				mod(&cfg)
			}
			iss, err := token.NewIssuer(cfg, key)
			if err != nil {
				t.Fatal(err)
			}
			tok, _, err := iss.Issue(ada.Id, c.SessionID, "user", token.Access, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		sign := func(in []byte) []byte { return ed25519.Sign(priv, in) }
		now := time.Now().Unix()
		hdr := func(mod func(map[string]any)) map[string]any {
			h := map[string]any{"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}
			if mod != nil {
				mod(h)
			}
			return h
		}
		cl := func(mod func(map[string]any)) map[string]any {
			m := map[string]any{
				"iss": "motorpool-test", "aud": "motorpool-api", "sub": itoa(ada.Id), "jti": "crafted-" + strconv.FormatInt(time.Now().UnixNano(), 36),
				"iat": now, "nbf": now, "exp": now + 600, "sid": c.SessionID, "role": "user", "typ": "access",
			}
			if mod != nil {
				mod(m)
			}
			return m
		}

		// The control: crafted like the bad ones below, with the real key and nothing wrong.
		control := craft(t, hdr(nil), cl(nil), sign)
		wantAlive(t, s, "crafted control token", control)
		wantAlive(t, s, "token from an issuer copy", issue(nil, realKey))

		tests := []struct {
			name   string
			authz  string
			reason string // what token.Verify names as the fault ("" to skip the check)
		}{
			{"garbage", bearer("garbage"), "compact"},
			{"two segments", bearer("abc.def"), "compact"},
			{"tampered payload", bearer(flip(adaTok, 1)), ""},
			{"tampered signature", bearer(flip(adaTok, 2)), ""},
			{"tampered header", bearer(flip(adaTok, 0)), ""},
			{"JSON serialization", bearer(`{"payload":"x","signatures":[]}`), "compact"},
			{"expired", bearer(issue(func(c *token.Config) { c.Now = func() time.Time { return time.Now().Add(-time.Hour) } }, realKey)), "exp"},
			{"expired (crafted)", bearer(craft(t, hdr(nil), cl(func(m map[string]any) { m["iat"], m["nbf"], m["exp"] = now-1200, now-1200, now-120 }), sign)), "exp"},
			{"not yet valid", bearer(issue(func(c *token.Config) { c.Now = func() time.Time { return time.Now().Add(time.Hour) } }, realKey)), ""},
			{"nbf in the future", bearer(craft(t, hdr(nil), cl(func(m map[string]any) { m["nbf"] = now + 300 }), sign)), "nbf"},
			{"wrong issuer", bearer(issue(func(c *token.Config) { c.Issuer = "someone-else" }, realKey)), "iss"},
			{"wrong audience", bearer(issue(func(c *token.Config) { c.Audience = "another-api" }, realKey)), "aud"},
			{"two audiences", bearer(craft(t, hdr(nil), cl(func(m map[string]any) { m["aud"] = []string{"motorpool-api", "another-api"} }), sign)), "aud"},
			{"no exp", bearer(craft(t, hdr(nil), cl(func(m map[string]any) { delete(m, "exp") }), sign)), "exp"},
			{"refresh token as access token", bearer(pair.RefreshToken), "typ"},
			{"typ claim refresh under an access header", bearer(craft(t, hdr(nil), cl(func(m map[string]any) { m["typ"] = "refresh" }), sign)), "typ"},
			{"no typ header", bearer(craft(t, hdr(func(h map[string]any) { delete(h, "typ") }), cl(nil), sign)), "typ"},
			{"alg none", bearer(craft(t, hdr(func(h map[string]any) { h["alg"] = "none" }), cl(nil), func([]byte) []byte { return []byte("x") })), "none"},
			{"alg none, no signature", bearer(strings.TrimSuffix(craft(t, hdr(func(h map[string]any) { h["alg"] = "none" }), cl(nil), func([]byte) []byte { return nil }), ".") + "."), ""},
			{"HS256 keyed with the public key", bearer(craft(t, hdr(func(h map[string]any) { h["alg"] = "HS256" }), cl(nil), func(in []byte) []byte {
				m := hmac.New(sha256.New, priv.Public().(ed25519.PublicKey))
				m.Write(in)
				return m.Sum(nil)
			})), "HS256"},
			{"alg swapped to ES256", bearer(craft(t, hdr(func(h map[string]any) { h["alg"] = "ES256" }), cl(nil), sign)), "alg"},
			{"no kid", bearer(craft(t, hdr(func(h map[string]any) { delete(h, "kid") }), cl(nil), sign)), "kid"},
			{"unknown kid", bearer(craft(t, hdr(func(h map[string]any) { h["kid"] = "nope" }), cl(nil), sign)), "kid"},
			{"crit header", bearer(craft(t, hdr(func(h map[string]any) { h["crit"] = []string{"exp"} }), cl(nil), sign)), "crit"},
			{"signed by another key", bearer(issue(nil, otherKey)), "kid"},
			{"signed by another key with the server's kid", bearer(issue(nil, sameKidOtherKey)), ""},
			{"unknown session", bearer(craft(t, hdr(nil), cl(func(m map[string]any) { m["sid"] = "no-such-session" }), sign)), ""},
			{"another user's id with this session", bearer(craft(t, hdr(nil), cl(func(m map[string]any) { m["sub"] = itoa(bob.Id) }), sign)), ""},
			{"Basic scheme", "Basic xyz", ""},
			{"Basic scheme with a valid token", "Basic " + adaTok, ""},
			{"Bearer with an empty token", "Bearer ", ""},
			{"Bearer alone", "Bearer", ""},
			{"token without a scheme", adaTok, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, b := send(t, s, http.MethodGet, "/auth/me", tt.authz, nil)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401; %s", resp.StatusCode, b)
				}
				decodeProblem(t, resp, b) // also checks the problem's status against the response's
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") || !strings.Contains(got, `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate = %q, want Bearer ... error=\"invalid_token\"", got)
				}
				if tt.reason != "" {
					tok := strings.TrimPrefix(tt.authz, "Bearer ")
					_, err := s.Issuer.Verify(tok, token.Access)
					if !errors.Is(err, token.ErrInvalid) || !strings.Contains(err.Error(), tt.reason) {
						t.Errorf("token.Verify = %v, want ErrInvalid naming %q", err, tt.reason)
					}
				}
			})
		}

		// The scheme is case-insensitive (RFC 9110 §11.1).
		if resp, b := send(t, s, http.MethodGet, "/auth/me", "bearer "+adaTok, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("lower-case bearer: %d %s", resp.StatusCode, b)
		}
		// A forged role claim does not make an admin: the role comes from the session.
		forged := craft(t, hdr(nil), cl(func(m map[string]any) { m["role"] = "admin" }), sign)
		expect(t, s, http.StatusForbidden, http.MethodGet, "/users", bearer(forged), nil)
		// None of that touched the real session.
		wantAlive(t, s, "ada after the bad tokens", adaTok)
	})
}

// TestAuthLogin: the token pair; wrong password and unknown email are indistinguishable;
// lockout after exactly five failures, shared by every spelling of the email, counted for
// unknown emails too, and answered alike for known and unknown ones.
func TestAuthLogin(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		mustUser(t, s, "ada@example.com")

		resp, b := loginRaw(t, s, "ada@example.com", testPassword)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d %s", resp.StatusCode, b)
		}
		var p client.TokenPair
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.TokenType != client.Bearer || p.ExpiresIn < 895 || p.ExpiresIn > 900 || p.RefreshExpiresIn <= p.ExpiresIn || p.RefreshExpiresIn > 7*24*3600 ||
			p.AccessToken == "" || p.RefreshToken == "" || p.AccessToken == p.RefreshToken {
			t.Errorf("token pair = %+v", p)
		}
		c := claimsOf(t, s, p.AccessToken)
		if exp := time.Until(c.ExpiresAt); exp < 14*time.Minute || exp > 15*time.Minute {
			t.Errorf("access token exp in %v, want 15m", exp)
		}
		if _, err := s.Issuer.Verify(p.RefreshToken, token.Refresh); err != nil {
			t.Errorf("refresh token: %v", err)
		}

		// Every spelling that normalizes to the address signs in to the same account.
		for _, v := range []string{"ADA@example.com", "ａｄａ@example.com", "ada\u200b@example.com"} {
			if got := claimsOf(t, s, s.login(t, v, testPassword).AccessToken).Subject; got != c.Subject {
				t.Errorf("login as %q: user %d, want %d", v, got, c.Subject)
			}
		}

		// Wrong password and unknown email: the same 401, byte for byte.
		wrongResp, wrong := loginRaw(t, s, "ada@example.com", "not the password")
		unknownResp, unknown := loginRaw(t, s, "nobody@example.com", "not the password")
		for _, r := range []*http.Response{wrongResp, unknownResp} {
			if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("bad login: %d, WWW-Authenticate %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
			}
		}
		if !bytes.Equal(wrong, unknown) {
			t.Errorf("wrong password and unknown email answer differently:\n%s\n%s", wrong, unknown)
		}

		t.Run("lockout after exactly five failures", func(t *testing.T) {
			mustUser(t, s, "lock@example.com")
			fail5(t, s, "lock@example.com")
			_, known := wantLocked(t, s, "lock@example.com", testPassword, 15*60)
			// Still locked, and the right password changes nothing.
			wantLocked(t, s, "lock@example.com", testPassword, 15*60)

			// Unknown emails are counted and locked alike, with the same body.
			fail5(t, s, "ghost@example.com")
			_, ghost := wantLocked(t, s, "ghost@example.com", "whatever", 15*60)
			if !bytes.Equal(known, ghost) {
				t.Errorf("locked known and unknown emails answer differently:\n%s\n%s", known, ghost)
			}
			// Another email is not affected.
			s.login(t, "ada@example.com", testPassword)
			logs := s.Logs.String()
			for _, ev := range []string{`"event":"login_failure"`, `"event":"lockout"`, `"event":"login_locked"`} {
				if !strings.Contains(logs, ev) {
					t.Errorf("the log has no %s", ev)
				}
			}
		})

		t.Run("email variants share one counter", func(t *testing.T) {
			mustUser(t, s, "grace@example.com")
			// A leading or trailing space does not pass the Email format (400, not counted), so
			// the variants are those that do: case, a zero-width space, full-width letters.
			if resp, b := loginRaw(t, s, " grace@example.com", "x"); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("login with a leading space: %d, want 400; %s", resp.StatusCode, b)
			}
			variants := []string{"GRACE@example.com", "grace\u200b@example.com", "\u200bGrace@Example.COM", "ｇｒａｃｅ@example.com", "grace@EXAMPLE.com"}
			for i, v := range variants {
				if resp, b := loginRaw(t, s, v, "wrong password"); resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("failure %d (%q): %d, want 401; %s", i+1, v, resp.StatusCode, b)
				}
			}
			wantLocked(t, s, "grace@example.com", testPassword, 15*60)
			if v, ok := valkeyOf(s); ok {
				if got := v.get(t, "login_attempts:{grace@example.com}"); got != "6" {
					t.Errorf("login_attempts:{grace@example.com} = %q, want 6", got)
				}
			}
			wantLocked(t, s, "ＧＲＡＣＥ@example.com", testPassword, 15*60)
		})
	})
}

// TestAuthLockoutExpires: with a short lockout window, the lock lifts when it passes.
func TestAuthLockoutExpires(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		const window = 3 * time.Second
		s := newTestServer(t, newBackend(t), withAuthConfig(func(c *auth.Config) { c.LockoutWindow = window }))
		mustUser(t, s, "ada@example.com")
		var retryAfter int
		for try := 1; ; try++ {
			start := time.Now()
			// Concurrently, so that the five land well inside the window even under -race.
			var wg sync.WaitGroup
			codes := make([]int, 5)
			for i := range codes {
				wg.Go(func() {
					resp, _, err := request(s, http.MethodPost, "/auth/login", "", map[string]string{"email": "ada@example.com", "password": "wrong password"})
					if err != nil {
						t.Error(err)
						return
					}
					codes[i] = resp.StatusCode
				})
			}
			wg.Wait()
			if diff := cmp.Diff([]int{401, 401, 401, 401, 401}, codes); diff != "" {
				t.Fatalf("five concurrent failures (-want +got):\n%s", diff)
			}
			resp, b := loginRaw(t, s, "ada@example.com", testPassword)
			if resp.StatusCode == http.StatusTooManyRequests {
				ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				if err != nil || ra < 1 || ra > int(window/time.Second) {
					t.Fatalf("Retry-After = %q, want an integer in [1, %d]", resp.Header.Get("Retry-After"), window/time.Second)
				}
				retryAfter = ra
				break
			}
			// A machine so busy that the window ran out before the sixth attempt: that attempt
			// rightly succeeded (and cleared the count), so try again rather than fail.
			if resp.StatusCode != http.StatusOK || time.Since(start) < window || try == 3 {
				t.Fatalf("sixth attempt %v after the first failure: %d, want 429; %s", time.Since(start), resp.StatusCode, b)
			}
			t.Logf("try %d: the window passed before the sixth attempt (%v); again", try, time.Since(start))
		}
		time.Sleep(time.Duration(retryAfter)*time.Second + 100*time.Millisecond)
		s.login(t, "ada@example.com", testPassword)
	})
}

// TestAuthLogout: logout ends the session and denies its access token (by jti, in Valkey,
// for the token's remaining life); logout-all ends every session of the caller.
func TestAuthLogout(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		_, tok, _ := s.member(t, "ada@example.com")
		pair := s.login(t, "ada@example.com", testPassword)
		c := claimsOf(t, s, pair.AccessToken)

		expect(t, s, http.StatusNoContent, http.MethodPost, "/auth/logout", bearer(pair.AccessToken), nil)
		wantDead(t, s, "access token after logout", pair.AccessToken)
		expect(t, s, http.StatusUnauthorized, http.MethodPost, "/auth/logout", bearer(pair.AccessToken), nil)
		if code, _, err := refreshRaw(s, pair.RefreshToken); err != nil || code != http.StatusUnauthorized {
			t.Errorf("refresh after logout: %d %v, want 401", code, err)
		}
		wantAlive(t, s, "the other session", tok)
		if v, ok := valkeyOf(s); ok {
			v.wantTTL(t, "blacklisted_token:{"+c.ID+"}", time.Until(c.ExpiresAt)+time.Minute)
			if v.exists(t, "session:{"+itoa(c.Subject)+"}:{"+c.SessionID+"}") {
				t.Error("session key survives logout")
			}
			if v.exists(t, "refresh_token:{"+itoa(c.Subject)+"}:{"+c.SessionID+"}") {
				t.Error("refresh_token key survives logout")
			}
		}

		t.Run("logout-all", func(t *testing.T) {
			one := s.login(t, "ada@example.com", testPassword)
			two := s.login(t, "ada@example.com", testPassword)
			wantAlive(t, s, "first", one.AccessToken)
			wantAlive(t, s, "second", two.AccessToken)
			expect(t, s, http.StatusNoContent, http.MethodPost, "/auth/logout-all", bearer(one.AccessToken), nil)
			for name, p := range map[string]client.TokenPair{"first": one, "second": two, "member": {AccessToken: tok}} {
				wantDead(t, s, name+" after logout-all", p.AccessToken)
				if p.RefreshToken != "" {
					if code, _, _ := refreshRaw(s, p.RefreshToken); code != http.StatusUnauthorized {
						t.Errorf("%s refresh after logout-all: %d, want 401", name, code)
					}
				}
			}
			wantAlive(t, s, "admin", s.token) // another user's sessions are untouched
			if v, ok := valkeyOf(s); ok {
				if m := v.smembers(t, "sessions:{"+itoa(c.Subject)+"}"); len(m) != 0 {
					t.Errorf("sessions set after logout-all = %v", m)
				}
			}
		})
	})
}

// TestAuthRefresh: rotation, reuse detection ending the session, and ten concurrent refreshes
// with one token leaving exactly one successor.
func TestAuthRefresh(t *testing.T) {
	t.Parallel()
	t.Run("rotation and reuse", func(t *testing.T) {
		eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
			s := newTestServer(t, newBackend(t), withAuthConfig(func(c *auth.Config) { c.RefreshGrace = 0 }))
			mustUser(t, s, "ada@example.com")
			first := s.login(t, "ada@example.com", testPassword)
			code, next, err := refreshRaw(s, first.RefreshToken)
			if err != nil || code != http.StatusOK {
				t.Fatalf("refresh: %d %v", code, err)
			}
			if next.AccessToken == first.AccessToken || next.RefreshToken == first.RefreshToken || next.TokenType != client.Bearer {
				t.Errorf("refresh did not return a new pair: %+v", next)
			}
			if next.RefreshExpiresIn > first.RefreshExpiresIn {
				t.Errorf("rotation extended the refresh token: %d > %d", next.RefreshExpiresIn, first.RefreshExpiresIn)
			}
			c1, c2 := claimsOf(t, s, first.AccessToken), claimsOf(t, s, next.AccessToken)
			if c1.SessionID != c2.SessionID || c1.Subject != c2.Subject {
				t.Errorf("refresh changed the session: %+v -> %+v", c1, c2)
			}
			wantAlive(t, s, "new access token", next.AccessToken)

			// Reuse of the rotated token: refused, and the session ends.
			if code, _, _ := refreshRaw(s, first.RefreshToken); code != http.StatusUnauthorized {
				t.Fatalf("reused refresh token: %d, want 401", code)
			}
			wantDead(t, s, "new access token after reuse", next.AccessToken)
			wantDead(t, s, "old access token after reuse", first.AccessToken)
			if code, _, _ := refreshRaw(s, next.RefreshToken); code != http.StatusUnauthorized {
				t.Errorf("successor refresh token after reuse: %d, want 401", code)
			}
			if !strings.Contains(s.Logs.String(), `"event":"refresh_reuse"`) {
				t.Error("refresh reuse was not logged")
			}
			// Garbage and an access token are no refresh tokens.
			other := s.login(t, "ada@example.com", testPassword)
			for _, bad := range []string{"garbage", other.AccessToken, flip(other.RefreshToken, 2)} {
				if code, _, _ := refreshRaw(s, bad); code != http.StatusUnauthorized {
					t.Errorf("refresh with %.20q...: %d, want 401", bad, code)
				}
			}
			wantAlive(t, s, "a session whose refresh token was tampered with", other.AccessToken)
		})
	})

	t.Run("ten concurrent refreshes", func(t *testing.T) {
		eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
			s := newTestServer(t, newBackend(t))
			mustUser(t, s, "ada@example.com")
			first := s.login(t, "ada@example.com", testPassword)
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				codes   = map[int]int{}
				winners []client.TokenPair
			)
			start := make(chan struct{})
			for range 10 {
				wg.Go(func() {
					<-start
					code, p, err := refreshRaw(s, first.RefreshToken)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					codes[code]++
					if code == http.StatusOK {
						winners = append(winners, p)
					}
				})
			}
			close(start)
			wg.Wait()
			if diff := cmp.Diff(map[int]int{200: 1, 401: 9}, codes); diff != "" {
				t.Fatalf("statuses of ten concurrent refreshes (-want +got):\n%s", diff)
			}
			w := winners[0]
			wantAlive(t, s, "the winner's access token", w.AccessToken)
			code, again, err := refreshRaw(s, w.RefreshToken)
			if err != nil || code != http.StatusOK {
				t.Fatalf("the winner's refresh token: %d %v", code, err)
			}
			wantAlive(t, s, "after the second rotation", again.AccessToken)
		})
	})
}

// TestAuthSessions: /auth/me, listing sessions and ending one of them.
func TestAuthSessions(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ada, tok1, _ := s.member(t, "ada@example.com")
		tok2 := s.login(t, "ada@example.com", testPassword).AccessToken
		sid1, sid2 := claimsOf(t, s, tok1).SessionID, claimsOf(t, s, tok2).SessionID

		var me client.Me
		getJSON(t, s, "/auth/me", tok1, &me)
		if diff := cmp.Diff(ada, me.User); diff != "" {
			t.Errorf("me.user (-want +got):\n%s", diff)
		}
		if ss := me.Session; ss.Id != sid1 || !ss.Current || ss.ExpiresAt.Sub(ss.LoginAt) != 12*time.Hour ||
			ss.LastActivityAt.Before(ss.LoginAt) || time.Since(ss.LoginAt) > time.Minute {
			t.Errorf("me.session = %+v, want id %s, current", ss, sid1)
		}

		var list client.SessionList
		getJSON(t, s, "/auth/sessions", tok1, &list)
		type row struct {
			ID      string
			Current bool
		}
		var got []row
		for _, x := range list.Items {
			got = append(got, row{x.Id, x.Current})
		}
		want := []row{{sid1, true}, {sid2, false}}
		sortRows := func(r []row) { slices.SortFunc(r, func(a, b row) int { return strings.Compare(a.ID, b.ID) }) }
		sortRows(got)
		sortRows(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sessions (-want +got):\n%s", diff)
		}

		// Another user cannot end ada's session: to them it does not exist.
		_, bobTok, _ := s.member(t, "bob@example.com")
		expect(t, s, http.StatusNotFound, http.MethodDelete, "/auth/sessions/"+sid2, bearer(bobTok), nil)
		wantAlive(t, s, "ada's second session after bob tried to end it", tok2)

		expect(t, s, http.StatusNoContent, http.MethodDelete, "/auth/sessions/"+sid2, bearer(tok1), nil)
		wantDead(t, s, "the ended session", tok2)
		wantAlive(t, s, "the session that ended the other", tok1)
		expect(t, s, http.StatusNotFound, http.MethodDelete, "/auth/sessions/"+sid2, bearer(tok1), nil)
		expect(t, s, http.StatusNotFound, http.MethodDelete, "/auth/sessions/no-such-session", bearer(tok1), nil)
		expect(t, s, http.StatusBadRequest, http.MethodDelete, "/auth/sessions/bad%7Bsid%7D", bearer(tok1), nil)
		list = client.SessionList{}
		getJSON(t, s, "/auth/sessions", tok1, &list)
		if len(list.Items) != 1 || list.Items[0].Id != sid1 {
			t.Errorf("sessions after ending one: %+v", list)
		}
		// Ending one's own current session works like logout.
		expect(t, s, http.StatusNoContent, http.MethodDelete, "/auth/sessions/"+sid1, bearer(tok1), nil)
		wantDead(t, s, "the session that ended itself", tok1)
	})
}

// TestAuthPasswordReset: the request says nothing about the email; the mailed token works once
// (also under two concurrent confirms), lifts a lockout and ends every session.
func TestAuthPasswordReset(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		ada, oldTok, _ := s.member(t, "ada@example.com")
		v, prod := valkeyOf(s)

		// Registered and unknown emails get the same answer; only the registered one gets mail.
		_, known := send(t, s, http.MethodPost, "/auth/password-reset", "", client.RequestPasswordResetJSONRequestBody{Email: "ada@example.com"})
		_, unknown := send(t, s, http.MethodPost, "/auth/password-reset", "", client.RequestPasswordResetJSONRequestBody{Email: "nobody@example.com"})
		if !bytes.Equal(known, unknown) {
			t.Errorf("reset answers differ for a known and an unknown email:\n%s\n%s", known, unknown)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Auth.WaitMail(ctx); err != nil {
			t.Fatal(err)
		}
		if l := s.Mail.last("nobody@example.com"); l != "" {
			t.Errorf("a link was mailed to an unknown email: %q", l)
		}
		if l := s.Mail.last("ada@example.com"); !strings.HasPrefix(l, "http://localhost:8080/reset-password?token=") {
			t.Errorf("reset link %q does not start with PUBLIC_BASE_URL/reset-password?token=", l)
		}

		// Lock the account (after one more sign-in); the reset still works and lifts the lock.
		before := s.login(t, "ada@example.com", testPassword)
		fail5(t, s, "ada@example.com")
		wantLocked(t, s, "ada@example.com", testPassword, 15*60)

		// Another spelling of the email finds the account; the link goes to the stored address.
		tok := requestReset(t, s, "ADA@Example.com", "ada@example.com")
		if len(tok) < 43 { // 256 bits, base64url
			t.Errorf("reset token %q is shorter than 256 bits", tok)
		}
		if prod {
			v.wantTTL(t, "reset_token:{"+sha256Hex(tok)+"}", time.Hour)
		}
		const newPassword = "a brand new passphrase"
		expect(t, s, http.StatusNoContent, http.MethodPost, "/auth/password-reset/confirm", "", client.ConfirmPasswordResetJSONRequestBody{Token: tok, NewPassword: newPassword})
		if prod && v.exists(t, "reset_token:{"+sha256Hex(tok)+"}") {
			t.Error("reset_token key survives its use")
		}
		wantDead(t, s, "a session from before the reset", oldTok)
		wantDead(t, s, "another session from before the reset", before.AccessToken)
		if code, _, _ := refreshRaw(s, before.RefreshToken); code != http.StatusUnauthorized {
			t.Errorf("refresh token from before the reset: %d, want 401", code)
		}
		s.login(t, "ada@example.com", newPassword) // the lockout is gone
		if resp, b := loginRaw(t, s, "ada@example.com", testPassword); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("old password after reset: %d %s", resp.StatusCode, b)
		}
		s.login(t, "ada@example.com", newPassword)

		// Used once, never again.
		resp, b := send(t, s, http.MethodPost, "/auth/password-reset/confirm", "", client.ConfirmPasswordResetJSONRequestBody{Token: tok, NewPassword: "yet another passphrase"})
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("second confirm: %d %s", resp.StatusCode, b)
		}
		if diff := cmp.Diff([]string{"token"}, problemFields(decodeProblem(t, resp, b))); diff != "" {
			t.Errorf("second confirm: fields (-want +got):\n%s", diff)
		}
		s.login(t, "ada@example.com", newPassword)
		current := newPassword

		t.Run("two concurrent confirms", func(t *testing.T) {
			tok := requestReset(t, s, "ada@example.com")
			var wg sync.WaitGroup
			codes := make([]int, 2)
			passwords := []string{"concurrent passphrase one", "concurrent passphrase two"}
			start := make(chan struct{})
			for i := range codes {
				wg.Go(func() {
					<-start
					resp, _, err := request(s, http.MethodPost, "/auth/password-reset/confirm", "", client.ConfirmPasswordResetJSONRequestBody{Token: tok, NewPassword: passwords[i]})
					if err != nil {
						t.Error(err)
						return
					}
					codes[i] = resp.StatusCode
				})
			}
			close(start)
			wg.Wait()
			got := slices.Clone(codes)
			slices.Sort(got)
			if diff := cmp.Diff([]int{204, 400}, got); diff != "" {
				t.Fatalf("two concurrent confirms (-want +got):\n%s", diff)
			}
			current = passwords[slices.Index(codes, 204)]
			s.login(t, "ada@example.com", current)
		})

		t.Run("bad tokens", func(t *testing.T) {
			for _, bad := range []string{"x", strings.Repeat("A", 43), sha256Hex("whatever")} {
				resp, b := send(t, s, http.MethodPost, "/auth/password-reset/confirm", "", client.ConfirmPasswordResetJSONRequestBody{Token: bad, NewPassword: "some long passphrase"})
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("confirm with %q: %d %s", bad, resp.StatusCode, b)
					continue
				}
				if diff := cmp.Diff([]string{"token"}, problemFields(decodeProblem(t, resp, b))); diff != "" {
					t.Errorf("confirm with %q: fields (-want +got):\n%s", bad, diff)
				}
			}
		})

		t.Run("a password change outdates a pending reset token", func(t *testing.T) {
			tok := requestReset(t, s, "ada@example.com")
			s.login(t, "ada@example.com", current)
			expect(t, s, http.StatusOK, http.MethodPut, "/users/"+itoa(ada.Id), bearer(s.token),
				client.UpdateUserJSONRequestBody{Email: "ada@example.com", Name: "Ada", Password: ptr("set by the admin meanwhile")})
			expect(t, s, http.StatusBadRequest, http.MethodPost, "/auth/password-reset/confirm", "", client.ConfirmPasswordResetJSONRequestBody{Token: tok, NewPassword: "too late passphrase"})
			s.login(t, "ada@example.com", "set by the admin meanwhile")
		})
	})
}

// TestAuthValkeyKeys: the key names, shapes and TTLs are part of the contract.
func TestAuthValkeyKeys(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, backends["production"](t))
	v, _ := valkeyOf(s)
	ada := mustUser(t, s, "ada@example.com")
	pair := s.login(t, "ada@example.com", testPassword)
	c := claimsOf(t, s, pair.AccessToken)
	uid := itoa(ada.Id)

	session := "session:{" + uid + "}:{" + c.SessionID + "}"
	v.wantTTL(t, session, 30*time.Minute)
	fields := v.hgetall(t, session)
	for _, f := range []string{"login_at", "last_activity_at", "expires_at", "client_ip", "user_agent"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("%s has no field %s: %v", session, f, fields)
		}
		delete(fields, f)
	}
	if diff := cmp.Diff(map[string]string{"user_id": uid, "email": "ada@example.com", "role": "user", "epoch": "0"}, fields); diff != "" {
		t.Errorf("%s (-want +got):\n%s", session, diff)
	}

	refresh := "refresh_token:{" + uid + "}:{" + c.SessionID + "}"
	v.wantTTL(t, refresh, 12*time.Hour) // the refresh token ends with its session's cap
	rt := v.hgetall(t, refresh)
	if rt["current"] != sha256Hex(pair.RefreshToken) || rt["family"] == "" || rt["expires_at"] == "" {
		t.Errorf("%s = %v, want current = sha256 of the refresh token", refresh, rt)
	}
	if strings.Contains(fmt.Sprint(rt), pair.RefreshToken) {
		t.Error("the refresh token itself is stored")
	}
	if m := v.smembers(t, "sessions:{"+uid+"}"); !slices.Contains(m, c.SessionID) {
		t.Errorf("sessions:{%s} = %v, want it to hold %s", uid, m, c.SessionID)
	}
	if p := v.pttl(t, "sessions:{"+uid+"}"); p <= 0 {
		t.Errorf("sessions:{%s} PTTL = %v, want an expiry", uid, p)
	}

	// A rotation replaces the hash and keeps the record's expiry.
	before := v.pttl(t, refresh)
	code, next, err := refreshRaw(s, pair.RefreshToken)
	if err != nil || code != http.StatusOK {
		t.Fatalf("refresh: %d %v", code, err)
	}
	rt2 := v.hgetall(t, refresh)
	if rt2["current"] != sha256Hex(next.RefreshToken) || rt2["prev"] != sha256Hex(pair.RefreshToken) || rt2["family"] != rt["family"] {
		t.Errorf("%s after rotation = %v", refresh, rt2)
	}
	if after := v.pttl(t, refresh); after > before {
		t.Errorf("rotation extended %s: %v -> %v", refresh, before, after)
	}

	// A failed login counts under the normalized email for at most the window.
	if resp, _ := loginRaw(t, s, "Ada@Example.COM", "wrong password"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("failed login: %d", resp.StatusCode)
	}
	attempts := "login_attempts:{ada@example.com}"
	if got := v.get(t, attempts); got != "1" {
		t.Errorf("%s = %q, want 1", attempts, got)
	}
	v.wantTTL(t, attempts, 15*time.Minute)
	s.login(t, "ada@example.com", testPassword)
	if v.exists(t, attempts) {
		t.Errorf("%s survives a successful login", attempts)
	}

	// Ending every session moves the user's epoch, kept a day for the sign-ins in flight.
	if r, err := s.Client.DeleteUserSessionsWithResponse(context.Background(), ada.Id); err != nil || r.StatusCode() != http.StatusNoContent {
		t.Fatalf("DELETE /users/%s/sessions: %v", uid, err)
	}
	epoch := "session_epoch:{" + uid + "}"
	if got := v.get(t, epoch); got != "1" {
		t.Errorf("%s = %q, want 1", epoch, got)
	}
	v.wantTTL(t, epoch, storage.SessionEpochRetention)
}

// TestAuthJWKS: the key set is public and names the kid access tokens carry.
func TestAuthJWKS(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		resp, b := send(t, s, http.MethodGet, "/.well-known/jwks.json", "", nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("jwks: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.Unmarshal(b, &set); err != nil {
			t.Fatal(err)
		}
		kid := segment(t, s.token, 0)["kid"]
		found := false
		for _, k := range set.Keys {
			if _, ok := k["d"]; ok {
				t.Errorf("JWKS leaks a private key: %v", k)
			}
			if k["kid"] == kid {
				found = true
				if k["alg"] != "EdDSA" || k["use"] != "sig" || k["kty"] != "OKP" {
					t.Errorf("key %v: want alg EdDSA, use sig, kty OKP", k)
				}
			}
		}
		if !found {
			t.Errorf("no key with the access token's kid %v in %s", kid, b)
		}
	})
}

// TestAuthLogsHoldNoSecrets: after logins, failures, refreshes, logouts and a reset, no log
// line holds a password or any token issued.
func TestAuthLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
		s := newTestServer(t, newBackend(t))
		const wrong, fresh = "wrong password attempt", "the password after reset"
		secrets := []string{testPassword, wrong, fresh, s.token}
		mustUser(t, s, "ada@example.com")
		p := s.login(t, "ada@example.com", testPassword)
		secrets = append(secrets, p.AccessToken, p.RefreshToken)
		loginRaw(t, s, "ada@example.com", wrong)
		loginRaw(t, s, "nobody@example.com", wrong)
		_, next, _ := refreshRaw(s, p.RefreshToken)
		secrets = append(secrets, next.AccessToken, next.RefreshToken)
		refreshRaw(s, p.RefreshToken) // a reuse, which is logged
		q := s.login(t, "ada@example.com", testPassword)
		secrets = append(secrets, q.AccessToken, q.RefreshToken)
		expect(t, s, http.StatusNoContent, http.MethodPost, "/auth/logout", bearer(q.AccessToken), nil)
		send(t, s, http.MethodGet, "/auth/me", bearer(q.AccessToken), nil)
		tok := requestReset(t, s, "ada@example.com")
		secrets = append(secrets, tok, sha256Hex(tok))
		expect(t, s, http.StatusNoContent, http.MethodPost, "/auth/password-reset/confirm", "", client.ConfirmPasswordResetJSONRequestBody{Token: tok, NewPassword: fresh})
		r := s.login(t, "ada@example.com", fresh)
		secrets = append(secrets, r.AccessToken, r.RefreshToken)

		logs := s.Logs.String()
		// Emails are logged only as hashes; the security events name users by id.
		if strings.Contains(logs, "ada@example.com") || strings.Contains(logs, "nobody@example.com") {
			t.Error("the log holds an email address")
		}
		if !strings.Contains(logs, `"event":"login_failure"`) || !strings.Contains(logs, `"event":"password_reset"`) {
			t.Fatalf("the security events are missing from the log:\n%s", logs)
		}
		for _, secret := range secrets {
			if secret == "" {
				t.Fatal("a secret to look for is empty")
			}
			// The payload and signature of a JWT are checked too: logging either alone is a leak
			// as well. (The header is the same in every token of a kind, so it is no secret.)
			parts := []string{secret}
			if p := strings.Split(secret, "."); len(p) == 3 {
				parts = append(parts, p[1], p[2])
			}
			for _, part := range parts {
				if len(part) >= 16 && strings.Contains(logs, part) {
					t.Errorf("the log holds a secret (%.24q...)", part)
				}
			}
		}
	})
}

// TestAuthSessionExpiry: sessions slide with activity up to the idle TTL, and end at their
// absolute cap however active they are; the refresh token ends with them.
func TestAuthSessionExpiry(t *testing.T) {
	t.Parallel()
	t.Run("idle", func(t *testing.T) {
		eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
			const idle = 3 * time.Second
			s := newTestServer(t, newBackend(t), withAuthConfig(func(c *auth.Config) { c.SessionIdleTTL = idle }))
			mustUser(t, s, "ada@example.com")
			p := s.login(t, "ada@example.com", testPassword)
			for range 4 { // 4 s of activity, a request a second: alive because it slides
				time.Sleep(time.Second)
				wantAlive(t, s, "an active session", p.AccessToken)
			}
			time.Sleep(idle + 500*time.Millisecond)
			wantDead(t, s, "an idle session", p.AccessToken)
			if code, _, _ := refreshRaw(s, p.RefreshToken); code != http.StatusUnauthorized {
				t.Errorf("refresh of an idle session: %d, want 401", code)
			}
		})
	})
	t.Run("absolute cap", func(t *testing.T) {
		eachBackend(t, func(t *testing.T, newBackend func(testing.TB) backend) {
			const maxAge = 3 * time.Second
			s := newTestServer(t, newBackend(t), withAuthConfig(func(c *auth.Config) { c.SessionMaxAge = maxAge }))
			mustUser(t, s, "ada@example.com")
			p := s.login(t, "ada@example.com", testPassword)
			if p.ExpiresIn > 3 || p.RefreshExpiresIn > 3 {
				t.Errorf("tokens outlive the session: %+v", p)
			}
			var me client.Me
			getJSON(t, s, "/auth/me", p.AccessToken, &me)
			if d := me.Session.ExpiresAt.Sub(me.Session.LoginAt); d != maxAge {
				t.Errorf("session expiresAt - loginAt = %v, want %v", d, maxAge)
			}
			deadline := me.Session.ExpiresAt
			for time.Until(deadline) > time.Second {
				wantAlive(t, s, "a session before its cap", p.AccessToken)
				time.Sleep(400 * time.Millisecond)
			}
			time.Sleep(time.Until(deadline) + 100*time.Millisecond)
			// Within the token's clock skew, so it is the session's cap that refuses it.
			wantDead(t, s, "a session past its cap", p.AccessToken)
			if code, _, _ := refreshRaw(s, p.RefreshToken); code != http.StatusUnauthorized {
				t.Errorf("refresh past the cap: %d, want 401", code)
			}
		})
	})
}
