package token_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/motorpool/motorpool/token"
)

// TestThumbprintKID checks the derived kid against the RFC 8037 §A.3 example: the RFC 7638
// thumbprint of the Ed25519 key with x = 11qYAYKx...
func TestThumbprintKID(t *testing.T) {
	x, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	k, err := token.ParsePublicKeyPEM(publicPEM(t, ed25519.PublicKey(x)), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.ID(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("kid = %q, want %q", got, want)
	}
	if got, want := k.Algorithm(), token.AlgEdDSA; got != want {
		t.Errorf("alg = %q, want %q", got, want)
	}
}

func TestParseKeyPEM(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	esPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	type keyInfo struct {
		Alg     string
		CanSign bool
		SameKID bool // private and public parse to the same derived kid
	}
	for _, tc := range []struct {
		name      string
		priv, pub any
		alg       string
	}{
		{"Ed25519", edPriv, edPriv.Public(), token.AlgEdDSA},
		{"P-256", esPriv, esPriv.Public(), token.AlgES256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			priv, err := token.ParsePrivateKeyPEM(privatePEM(t, tc.priv), "")
			if err != nil {
				t.Fatal(err)
			}
			pub, err := token.ParsePublicKeyPEM(publicPEM(t, tc.pub), "")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(keyInfo{tc.alg, true, true}, keyInfo{priv.Algorithm(), priv.CanSign(), priv.ID() == pub.ID()}); diff != "" {
				t.Errorf("private key (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(keyInfo{tc.alg, false, true}, keyInfo{pub.Algorithm(), pub.CanSign(), len(pub.ID()) == 43}); diff != "" {
				t.Errorf("public key (-want +got):\n%s", diff)
			}
			named, err := token.ParsePrivateKeyPEM(privatePEM(t, tc.priv), "2030-01")
			if err != nil {
				t.Fatal(err)
			}
			if named.ID() != "2030-01" {
				t.Errorf("given kid: got %q", named.ID())
			}
			round, err := priv.PublicKeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			if string(round) != string(publicPEM(t, tc.pub)) {
				t.Errorf("PublicKeyPEM differs from the PKIX encoding:\n%s", round)
			}
		})
	}

	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(esPriv)
	if err != nil {
		t.Fatal(err)
	}
	edPEM := privatePEM(t, edPriv)

	t.Run("private errors", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			pem    []byte
			kid    string
			reason string
		}{
			{"empty", nil, "", "no PEM block"},
			{"not PEM", []byte("hello"), "", "no PEM block"},
			{"RSA", privatePEM(t, rsaPriv), "", "unsupported key type"},
			{"P-384", privatePEM(t, p384), "", "curve"},
			{"SEC1 EC key", pemBlock(t, "EC PRIVATE KEY", sec1), "", "pkcs8"},
			{"public key given", publicPEM(t, edPriv.Public()), "", "PUBLIC KEY"},
			{"two blocks", append(append([]byte{}, edPEM...), edPEM...), "", "more than one"},
			{"corrupt DER", pemBlock(t, "PRIVATE KEY", []byte{0x30, 0x01}), "", "asn1"},
			{"kid with space", edPEM, "my key", "kid"},
			{"kid too long", edPEM, strings.Repeat("k", 129), "kid"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := token.ParsePrivateKeyPEM(tc.pem, tc.kid)
				if err == nil || !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("err = %v, want one mentioning %q", err, tc.reason)
				}
			})
		}
	})
	t.Run("public errors", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			pem    []byte
			reason string
		}{
			{"private key given", edPEM, "PRIVATE KEY"},
			{"RSA", publicPEM(t, rsaPriv.Public()), "unsupported key type"},
			{"P-384", publicPEM(t, p384.Public()), "curve"},
			{"corrupt DER", pemBlock(t, "PUBLIC KEY", []byte{1, 2, 3}), "asn1"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := token.ParsePublicKeyPEM(tc.pem, "")
				if err == nil || !strings.Contains(err.Error(), tc.reason) {
					t.Errorf("err = %v, want one mentioning %q", err, tc.reason)
				}
			})
		}
	})
	t.Run("zero key", func(t *testing.T) {
		var k token.Key
		if k.Algorithm() != "" || k.CanSign() || k.ID() != "" {
			t.Error("zero Key looks usable")
		}
		if _, err := k.PublicKeyPEM(); err == nil {
			t.Error("PublicKeyPEM of zero Key succeeded")
		}
	})
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "keys", "jwt.pem") // parents do not exist yet

	first, err := token.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !first.CanSign() || first.Algorithm() != token.AlgEdDSA {
		t.Errorf("created key: sign %v alg %q; want an EdDSA signing key", first.CanSign(), first.Algorithm())
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("key file mode %v, want 0600", got)
		}
		di, err := os.Stat(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if got := di.Mode().Perm(); got != 0o700 {
			t.Errorf("key dir mode %v, want 0700", got)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile, err := token.ParsePrivateKeyPEM(data, ""); err != nil || fromFile.ID() != first.ID() {
		t.Errorf("file does not hold the returned key: %v", err)
	}

	second, err := token.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID() != first.ID() {
		t.Errorf("second load: kid %q, want %q (same key)", second.ID(), first.ID())
	}

	// A token issued before the "restart" verifies after it.
	clock := &fakeClock{t: epoch}
	tok, _, err := newIssuer(t, testConfig(clock), first).Issue(1, "s", "user", token.Access, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newIssuer(t, testConfig(clock), second).Verify(tok, token.Access); err != nil {
		t.Errorf("token from before the restart: %v", err)
	}
	assertNoTempFiles(t, filepath.Dir(path))
}

func TestLoadOrCreateKeyLoadsExisting(t *testing.T) {
	// An operator-provided ES256 key is loaded as is, not replaced by an Ed25519 one.
	esPriv, want := esKey(t, "")
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, privatePEM(t, esPriv), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := token.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != want.ID() || got.Algorithm() != token.AlgES256 {
		t.Errorf("loaded kid %q alg %q, want %q ES256", got.ID(), got.Algorithm(), want.ID())
	}
}

func TestLoadOrCreateKeyCorruptFileKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := token.LoadOrCreateKey(path); err == nil {
		t.Fatal("corrupt key file accepted")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "not a key" {
		t.Error("corrupt key file was overwritten")
	}
}

// TestLoadOrCreateKeyConcurrent starts many "servers" at once on an empty directory: exactly
// one key may win and everyone must end up with it.
func TestLoadOrCreateKeyConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "jwt.pem")
	const n = 32
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			k, err := token.LoadOrCreateKey(path)
			ids[i], errs[i] = k.ID(), err
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("caller %d got kid %q, caller 0 got %q", i, ids[i], ids[0])
		}
	}
	onDisk, err := token.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if onDisk.ID() != ids[0] {
		t.Errorf("file holds kid %q, callers got %q", onDisk.ID(), ids[0])
	}
	assertNoTempFiles(t, dir)
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"jwt.pem"}, names); diff != "" {
		t.Errorf("directory entries (-want +got):\n%s", diff)
	}
}
