package password_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/motorpool/motorpool/password"
)

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := password.NewHasher(password.OWASP, 0)
	enc, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not carry the OWASP parameters", enc)
	}
	if strings.Contains(enc, "correct horse") {
		t.Fatal("hash contains the password")
	}
	ok, err := h.Verify(ctx, enc, "correct horse battery")
	if err != nil || !ok {
		t.Fatalf("Verify(right password) = %v, %v; want true", ok, err)
	}
	ok, err = h.Verify(ctx, enc, "correct horse batterY")
	if err != nil || ok {
		t.Fatalf("Verify(wrong password) = %v, %v; want false", ok, err)
	}
	again, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if again == enc {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

// A hash made with other parameters still verifies: they travel with the hash.
func TestVerifyUsesStoredParams(t *testing.T) {
	ctx := context.Background()
	old := password.NewHasher(password.Params{Memory: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 1)
	enc, err := old.Hash(ctx, "an older password")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := password.NewHasher(password.OWASP, 1).Verify(ctx, enc, "an older password")
	if err != nil || !ok {
		t.Fatalf("Verify = %v, %v; want true", ok, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := password.NewHasher(password.OWASP, 1)
	for _, enc := range []string{
		"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5",
		"$argon2id$v=18$m=19456,t=2,p=1$c2FsdHNhbHQ$a2V5",
		"$argon2id$v=19$m=0,t=2,p=1$c2FsdHNhbHQ$a2V5",
		"$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$a2V5",
		"$argon2id$v=19$m=19456,t=2,p=1$!!$a2V5",
		"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
	} {
		if _, err := h.Verify(context.Background(), enc, "x"); !errors.Is(err, password.ErrMalformedHash) {
			t.Errorf("Verify(%q) error = %v; want ErrMalformedHash", enc, err)
		}
	}
}

// A caller that has gone away does not get a hash computed for it.
func TestHashHonoursContext(t *testing.T) {
	h := password.NewHasher(password.OWASP, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "another password"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash with cancelled context: %v; want context.Canceled", err)
	}
}
