// Package token issues and verifies the API's JSON Web Tokens: short-lived access tokens and
// longer-lived refresh tokens, signed with an asymmetric key (EdDSA/Ed25519 by default, or
// ES256) and checked against a fixed set of keys selected by `kid`.
//
// The package is deliberately strict, because every check it skips is a way in: only the
// compact serialization is accepted; the algorithm comes from the key, never from the token
// (so `none`, HS* and any other algorithm swap fail); `iss` and `aud` must match exactly;
// `exp` is required; and access and refresh tokens are kept apart by both the `typ` claim and
// the JWS `typ` header (RFC 9068 "at+jwt", and "rt+jwt"). Every verification failure is
// ErrInvalid, so the HTTP edge can answer 401 without telling an attacker which check failed.
package token

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// ErrInvalid is returned, wrapping the specific reason, for every token Verify refuses. Callers
// should map it to 401 without distinguishing reasons; the reason is for logs and tests.
var ErrInvalid = errors.New("invalid token")

// ErrVerifyOnly is Issue's error on an Issuer made by NewVerifier, which has no key to sign with.
var ErrVerifyOnly = errors.New("token: issue: this issuer only verifies (it has no private key)")

// Type tells access tokens from refresh tokens. It is carried in the `typ` claim and, as a media
// type, in the JWS `typ` header.
type Type string

// RoleService is the role of service access tokens: their subject is 0 (no user) and their
// sid names the service.
const RoleService = "service"

// The two token types.
const (
	Access  Type = "access"
	Refresh Type = "refresh"
)

// headerType is the JWS `typ` header of each token type: RFC 9068's "at+jwt" for access tokens
// and the analogous "rt+jwt" for refresh tokens, so a token cannot be replayed as the other kind
// even by code that forgets to look at the claim.
func (t Type) headerType() string {
	switch t {
	case Access:
		return "at+jwt"
	case Refresh:
		return "rt+jwt"
	}
	return ""
}

// DefaultSkew is the clock skew tolerated when Config.Skew is zero: enough for servers whose
// clocks are synchronised, small enough not to stretch short access-token lifetimes much.
const DefaultSkew = 30 * time.Second

// maxTokenLen bounds the input Verify looks at. Our tokens are a few hundred bytes; refusing
// anything much larger keeps a hostile header from costing parse time.
const maxTokenLen = 8 << 10

// Claim names beyond the registered ones.
const (
	claimSessionID = "sid"
	claimRole      = "role"
	claimType      = "typ"
)

// Config is the Issuer's policy.
type Config struct {
	// Issuer is the `iss` claim written and required exactly. Required.
	Issuer string
	// Audience is the `aud` claim written and required exactly (a single value). Required.
	Audience string
	// AccessTTL and RefreshTTL are the longest lifetimes of the two token types. Required (> 0).
	AccessTTL, RefreshTTL time.Duration
	// Skew is the clock difference tolerated when checking exp, nbf and iat; zero means
	// DefaultSkew. Negative is an error.
	Skew time.Duration
	// Now is the clock, injectable for tests; nil means time.Now.
	Now func() time.Time
	// VerifiedCacheSize bounds the tokens Verify remembers as verified (see verifiedCache);
	// zero means DefaultVerifiedCacheSize, negative turns the cache off.
	VerifiedCacheSize int
}

// Issuer signs tokens with one key and verifies them with that key and any verification-only
// keys (older keys kept during rotation); one made by NewVerifier only verifies. It is
// immutable and safe for concurrent use.
type Issuer struct {
	cfg      Config
	signing  Key
	keys     map[string]Key // by kid; includes the signing key
	order    []string       // kids in JWKS order: signing key first
	verified *verifiedCache // nil when off; its keys and clock rule keep the Issuer's checks
}

// Claims are the verified contents of a token.
type Claims struct {
	Subject   int64  // the user id (`sub`, a decimal string on the wire)
	SessionID string // `sid`
	ID        string // `jti`: random, unique per token; the handle for denylisting
	Role      string // `role`
	Type      Type   // `typ` claim
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
}

// NewIssuer checks cfg, fills in its defaults and returns an Issuer that signs with signing
// (which must hold a private key) and also accepts tokens signed by verifyOnly keys. Key ids
// must be unique; a verification-only key equal to the signing key is ignored, so configuring
// the current public key as well is harmless.
func NewIssuer(cfg Config, signing Key, verifyOnly ...Key) (*Issuer, error) {
	if !signing.CanSign() {
		return nil, errors.New("token: signing key has no private part")
	}
	return newIssuer(cfg, signing, verifyOnly)
}

// NewVerifier is NewIssuer without a signing key: an Issuer that accepts tokens signed by any
// of keys (at least one; only their public parts are kept) and whose Issue fails. It is for a
// process that checks the tokens another one signs, and so needs no private key.
func NewVerifier(cfg Config, keys ...Key) (*Issuer, error) {
	if len(keys) == 0 {
		return nil, errors.New("token: a verifier needs at least one key")
	}
	return newIssuer(cfg, Key{}, keys)
}

// newIssuer builds an Issuer; signing is the zero Key for a verifier.
func newIssuer(cfg Config, signing Key, verifyOnly []Key) (*Issuer, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("token: config: empty Issuer")
	case cfg.Audience == "":
		return nil, errors.New("token: config: empty Audience")
	case cfg.AccessTTL <= 0:
		return nil, errors.New("token: config: AccessTTL must be positive")
	case cfg.RefreshTTL <= 0:
		return nil, errors.New("token: config: RefreshTTL must be positive")
	case cfg.Skew < 0:
		return nil, errors.New("token: config: negative Skew")
	}
	if cfg.Skew == 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	iss := &Issuer{cfg: cfg, signing: signing, keys: map[string]Key{}}
	if signing.CanSign() {
		iss.keys[signing.id], iss.order = signing.Public(), []string{signing.id}
	}
	switch {
	case cfg.VerifiedCacheSize == 0:
		iss.verified = newVerifiedCache(DefaultVerifiedCacheSize)
	case cfg.VerifiedCacheSize > 0:
		iss.verified = newVerifiedCache(cfg.VerifiedCacheSize)
	}
	for _, k := range verifyOnly {
		if k.public == nil {
			return nil, errors.New("token: zero verification key")
		}
		if have, ok := iss.keys[k.id]; ok {
			if have.alg == k.alg && equalPublic(have, k) {
				continue
			}
			return nil, fmt.Errorf("token: two different keys with kid %q", k.id)
		}
		iss.keys[k.id] = k.Public()
		iss.order = append(iss.order, k.id)
	}
	return iss, nil
}

// equalPublic compares public keys; both concrete types have an Equal method.
func equalPublic(a, b Key) bool {
	eq, ok := a.public.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b.public)
}

// Issue signs a token of type typ for the user's session. It expires at now+AccessTTL or
// now+RefreshTTL (by type), or at expiresAt if that is earlier and not zero: a refresh token
// passes its session's absolute cap so that rotation never extends the session. Times are in
// whole seconds, as on the wire. It fails if userID is not positive, sid or role is empty, or
// the expiry is not in the future (the cap has been reached).
func (i *Issuer) Issue(userID int64, sid, role string, typ Type, expiresAt time.Time) (string, Claims, error) {
	if !i.signing.CanSign() {
		return "", Claims{}, ErrVerifyOnly
	}
	ttl := i.cfg.AccessTTL
	switch typ {
	case Access:
	case Refresh:
		ttl = i.cfg.RefreshTTL
	default:
		return "", Claims{}, fmt.Errorf("token: issue: unknown type %q", typ)
	}
	switch {
	case userID < 0 || userID == 0 && (role != RoleService || typ != Access):
		return "", Claims{}, errors.New("token: issue: user id must be positive (0 only for a service access token)")
	case sid == "":
		return "", Claims{}, errors.New("token: issue: empty session id")
	case role == "":
		return "", Claims{}, errors.New("token: issue: empty role")
	}

	now := i.cfg.Now().UTC().Truncate(time.Second)
	exp := now.Add(ttl)
	if !expiresAt.IsZero() && expiresAt.Before(exp) {
		exp = expiresAt.UTC().Truncate(time.Second)
	}
	if !exp.After(now) {
		return "", Claims{}, errors.New("token: issue: expiry is not in the future")
	}

	c := Claims{
		Subject:   userID,
		SessionID: sid,
		ID:        newJTI(),
		Role:      role,
		Type:      typ,
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: exp,
	}
	t, err := jwt.NewBuilder().
		Issuer(i.cfg.Issuer).
		Audience([]string{i.cfg.Audience}).
		Subject(strconv.FormatInt(userID, 10)).
		JwtID(c.ID).
		IssuedAt(c.IssuedAt).
		NotBefore(c.NotBefore).
		Expiration(c.ExpiresAt).
		Claim(claimSessionID, sid).
		Claim(claimRole, role).
		Claim(claimType, string(typ)).
		Build()
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: issue: build: %w", err)
	}
	// A single audience is written as a string, the common form that strict clients expect.
	t.Options().Enable(jwt.FlattenAudience)

	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, i.signing.id); err != nil {
		return "", Claims{}, fmt.Errorf("token: issue: header: %w", err)
	}
	if err := hdr.Set(jws.TypeKey, typ.headerType()); err != nil {
		return "", Claims{}, fmt.Errorf("token: issue: header: %w", err)
	}
	signed, err := jwt.Sign(t, jwt.WithKey(i.signing.alg, i.signing.signer, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: issue: sign: %w", err)
	}
	return string(signed), c, nil
}

// newJTI returns 128 random bits, base64url-encoded: unguessable and unique without a counter.
func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it aborts the program instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// joseHeader is the part of the protected header Verify decides on before any cryptography.
type joseHeader struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
	B64  json.RawMessage `json:"b64"`
}

// Verify checks token and returns its claims if it is a valid token of type want: compact
// serialization; a known kid whose key's algorithm equals the header's alg; the header typ of
// want; a good signature; iss and aud exactly as configured; exp present and not past, nbf and
// iat not in the future, each within the skew; and the typ claim equal to want. Any failure
// returns an error wrapping ErrInvalid. It never panics, whatever the input.
//
// A token that passed is remembered (by the hash of the whole compact token) and, presented
// again before its exp, answered without the signature check: see verifiedCache. This only
// replaces the cryptography; whoever calls Verify still checks the session and the denylist.
func (i *Issuer) Verify(token string, want Type) (Claims, error) {
	if i.verified == nil || len(token) > maxTokenLen {
		return i.verifyFull(token, want)
	}
	k, now := tokenKey(token), i.cfg.Now()
	if c, ok := i.verified.get(k, want, now); ok {
		return c, nil
	}
	c, err := i.verifyFull(token, want)
	if err == nil {
		i.verified.put(k, want, c, now)
	}
	return c, err
}

func (i *Issuer) verifyFull(token string, want Type) (Claims, error) {
	c, err := i.verify(token, want)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return c, nil
}

func (i *Issuer) verify(token string, want Type) (Claims, error) {
	wantHeaderType := want.headerType()
	if wantHeaderType == "" {
		return Claims{}, fmt.Errorf("unknown wanted type %q", want)
	}
	if len(token) > maxTokenLen {
		return Claims{}, errors.New("too long")
	}
	if err := checkCompact(token); err != nil {
		return Claims{}, err
	}

	hdr, err := decodeHeader(token[:strings.IndexByte(token, '.')])
	if err != nil {
		return Claims{}, err
	}
	// Spelled out although the key's pinned algorithm would refuse them anyway, so the
	// reason in the log names the attack.
	if strings.EqualFold(hdr.Alg, "none") || strings.HasPrefix(strings.ToUpper(hdr.Alg), "HS") {
		return Claims{}, fmt.Errorf("algorithm %q not allowed", hdr.Alg)
	}
	if hdr.Kid == "" {
		return Claims{}, errors.New("no kid")
	}
	key, ok := i.keys[hdr.Kid]
	if !ok {
		return Claims{}, fmt.Errorf("unknown kid %q", hdr.Kid)
	}
	if hdr.Alg != key.alg.String() {
		return Claims{}, fmt.Errorf("alg %q does not match key %q (%s)", hdr.Alg, key.id, key.alg)
	}
	if !sameMediaType(hdr.Typ, wantHeaderType) {
		return Claims{}, fmt.Errorf("header typ %q, want %q", hdr.Typ, wantHeaderType)
	}
	// We define no extensions, so any critical one cannot be understood (RFC 7515 §4.1.11),
	// and b64=false (RFC 7797) would change what was signed.
	if hdr.Crit != nil || hdr.B64 != nil {
		return Claims{}, errors.New("crit or b64 header not supported")
	}

	t, err := jwt.Parse([]byte(token),
		jwt.WithKey(key.alg, key.public), // one key, one algorithm: nothing from the header
		jwt.WithIssuer(i.cfg.Issuer),
		jwt.WithAudience(i.cfg.Audience),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithRequiredClaim(jwt.SubjectKey),
		jwt.WithRequiredClaim(jwt.JwtIDKey),
		jwt.WithClaimValue(claimType, string(want)),
		jwt.WithAcceptableSkew(i.cfg.Skew),
		jwt.WithClock(jwt.ClockFunc(i.cfg.Now)),
	)
	if err != nil {
		return Claims{}, err
	}
	return claimsOf(t, i.cfg.Audience, want)
}

// checkCompact accepts only the JWS compact serialization: three non-empty base64url segments.
// This refuses the JSON serialization (which jwx would otherwise parse), whitespace, padding
// and anything exotic before any decoder sees it.
func checkCompact(token string) error {
	if strings.Count(token, ".") != 2 {
		return errors.New("not a compact JWS (want three dot-separated parts)")
	}
	for j := 0; j < len(token); j++ {
		c := token[j]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("byte %#x at offset %d is not base64url", c, j)
		}
	}
	for _, part := range strings.Split(token, ".") {
		if part == "" {
			return errors.New("empty part in compact JWS")
		}
	}
	return nil
}

// decodeHeader decodes the protected header. Unknown members are ignored: the ones that could
// point at a key (jwk, jku, x5u, x5c) are never used, since keys come only from configuration.
func decodeHeader(seg string) (joseHeader, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return joseHeader{}, fmt.Errorf("header: %w", err)
	}
	var h joseHeader
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&h); err != nil {
		return joseHeader{}, fmt.Errorf("header: %w", err)
	}
	if dec.More() {
		return joseHeader{}, errors.New("header: trailing data")
	}
	return h, nil
}

// sameMediaType compares a typ header with the expected short form. RFC 7515 §4.1.9 lets typ
// omit the "application/" prefix and media types are case-insensitive, so "application/at+jwt"
// (which RFC 9068 also allows) matches "at+jwt".
func sameMediaType(got, want string) bool {
	if len(got) > len("application/") && strings.EqualFold(got[:len("application/")], "application/") {
		got = got[len("application/"):]
	}
	return strings.EqualFold(got, want)
}

// claimsOf extracts and checks the claims jwt.Validate does not: the exact audience, the
// subject as a canonical positive decimal, and the presence and types of the private claims.
func claimsOf(t jwt.Token, audience string, want Type) (Claims, error) {
	if aud, _ := t.Audience(); len(aud) != 1 || aud[0] != audience {
		return Claims{}, fmt.Errorf("aud %q, want exactly %q", aud, audience)
	}
	sub, _ := t.Subject()
	uid, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || uid < 0 || strconv.FormatInt(uid, 10) != sub {
		return Claims{}, fmt.Errorf("sub %q is not a user id", sub)
	}
	var c Claims
	c.Subject = uid
	c.ID, _ = t.JwtID()
	if c.ID == "" {
		return Claims{}, errors.New("empty jti")
	}
	var typ string
	for _, p := range []struct {
		name string
		dst  *string
	}{{claimSessionID, &c.SessionID}, {claimRole, &c.Role}, {claimType, &typ}} {
		if err := t.Get(p.name, p.dst); err != nil {
			return Claims{}, fmt.Errorf("claim %s: %w", p.name, err)
		}
		if *p.dst == "" {
			return Claims{}, fmt.Errorf("claim %s is empty", p.name)
		}
	}
	if Type(typ) != want { // already checked by WithClaimValue; kept so this function stands alone
		return Claims{}, fmt.Errorf("typ claim %q, want %q", typ, want)
	}
	if uid == 0 && (c.Role != RoleService || want != Access) {
		return Claims{}, fmt.Errorf("sub %q is not a user id", sub)
	}
	c.Type = want
	iat, _ := t.IssuedAt()
	nbf, _ := t.NotBefore()
	exp, _ := t.Expiration()
	c.IssuedAt, c.ExpiresAt = iat.UTC(), exp.UTC()
	if !nbf.IsZero() {
		c.NotBefore = nbf.UTC()
	}
	return c, nil
}

// JWKS returns the public keys (signing key first) as a JWK Set, each with kid, alg and
// use=sig, for GET /.well-known/jwks.json, so other services can verify tokens without sharing
// a secret.
func (i *Issuer) JWKS() ([]byte, error) {
	set := jwk.NewSet()
	for _, kid := range i.order {
		k := i.keys[kid]
		jk, err := jwk.Import(k.public)
		if err != nil {
			return nil, fmt.Errorf("token: jwks: %w", err)
		}
		for name, v := range map[string]any{jwk.KeyIDKey: k.id, jwk.AlgorithmKey: k.alg, jwk.KeyUsageKey: "sig"} {
			if err := jk.Set(name, v); err != nil {
				return nil, fmt.Errorf("token: jwks: set %s: %w", name, err)
			}
		}
		if err := set.AddKey(jk); err != nil {
			return nil, fmt.Errorf("token: jwks: %w", err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("token: jwks: %w", err)
	}
	return b, nil
}
