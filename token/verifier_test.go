package token_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/token"
)

// A process holding only the public keys (a vehicles-only process) accepts the tokens the
// signing process issues, with the same checks, and cannot issue any itself.
func TestVerifier(t *testing.T) {
	clock := &fakeClock{t: epoch}
	cfg := testConfig(clock)
	_, current := edKey(t, "")
	_, old := esKey(t, "")
	signer := newIssuer(t, cfg, current)
	before := newIssuer(t, cfg, old)

	pem, err := current.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	public, err := token.ParsePublicKeyPEM(pem, "")
	if err != nil {
		t.Fatal(err)
	}
	v, err := token.NewVerifier(cfg, public, old.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, iss := range []*token.Issuer{signer, before} {
		tok, issued, err := iss.Issue(9, "sid", "user", token.Access, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := v.Verify(tok, token.Access)
		if err != nil {
			t.Fatalf("the verifier refused a token of a configured key: %v", err)
		}
		if diff := cmp.Diff(issued, got); diff != "" {
			t.Errorf("claims (-issued +verified):\n%s", diff)
		}
		_, err = v.Verify(tok, token.Refresh)
		wantInvalid(t, err, "typ")
	}
	_, stranger := edKey(t, "")
	tok, _, err := newIssuer(t, cfg, stranger).Issue(9, "sid", "user", token.Access, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(tok, token.Access)
	wantInvalid(t, err, "unknown kid")

	if _, _, err := v.Issue(9, "sid", "user", token.Access, time.Time{}); !errors.Is(err, token.ErrVerifyOnly) {
		t.Errorf("Issue on a verifier: %v, want ErrVerifyOnly", err)
	}
	// Given a private key, a verifier still only verifies.
	v2, err := token.NewVerifier(cfg, current)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := v2.Issue(9, "sid", "user", token.Access, time.Time{}); !errors.Is(err, token.ErrVerifyOnly) {
		t.Errorf("Issue on a verifier given a private key: %v, want ErrVerifyOnly", err)
	}
	set := parseJWKS(t, v)
	if set.Len() != 2 {
		t.Errorf("the verifier's JWKS has %d keys, want 2", set.Len())
	}
	if k, ok := set.Key(0); !ok || func() string { kid, _ := k.KeyID(); return kid }() != current.ID() {
		t.Errorf("the verifier's JWKS does not list the first configured key first")
	}

	if _, err := token.NewVerifier(cfg); err == nil {
		t.Error("NewVerifier without keys succeeded")
	}
	if _, err := token.NewVerifier(cfg, token.Key{}); err == nil {
		t.Error("NewVerifier with a zero key succeeded")
	}
}
