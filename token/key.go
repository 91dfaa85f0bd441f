package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// The algorithms a Key can carry. EdDSA (Ed25519) is the default because its keys are small,
// signing is deterministic (no nonce to get wrong) and it is fast; ES256 is there for
// deployments whose key management only offers P-256.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
)

// maxKIDLen bounds operator-supplied key ids: a kid travels in every token header.
const maxKIDLen = 128

// Key is a signing key (private and public part) or a verification-only key (public part),
// with its key id and the one algorithm it may be used with. Pinning the algorithm to the key,
// rather than trusting a token's header, is what rules out algorithm-confusion attacks.
// The zero Key is not usable; build one with ParsePrivateKeyPEM, ParsePublicKeyPEM or
// LoadOrCreateKey. A Key is immutable and safe to share.
type Key struct {
	id     string
	alg    jwa.SignatureAlgorithm
	signer crypto.Signer    // nil for a verification-only key
	public crypto.PublicKey // ed25519.PublicKey or *ecdsa.PublicKey (P-256)
}

// ID returns the key id, the `kid` header of the tokens it signs.
func (k Key) ID() string { return k.id }

// Algorithm returns the JWS algorithm the key is pinned to: AlgEdDSA or AlgES256.
func (k Key) Algorithm() string {
	if k.public == nil {
		return ""
	}
	return k.alg.String()
}

// CanSign reports whether the key holds a private part.
func (k Key) CanSign() bool { return k.signer != nil }

// Public returns the verification-only form of the key (same id and algorithm), which is what
// an old signing key becomes after rotation.
func (k Key) Public() Key {
	k.signer = nil
	return k
}

// PublicKeyPEM returns the public part as a PKIX "PUBLIC KEY" PEM block, the format
// ParsePublicKeyPEM reads, so an operator can keep accepting an old key's tokens after
// rotating without keeping its private part around.
func (k Key) PublicKeyPEM() ([]byte, error) {
	if k.public == nil {
		return nil, errors.New("token: public key PEM: zero Key")
	}
	der, err := x509.MarshalPKIXPublicKey(k.public)
	if err != nil {
		return nil, fmt.Errorf("token: public key PEM: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM reads a signing key from a single PKCS#8 "PRIVATE KEY" PEM block holding
// an Ed25519 key (algorithm EdDSA) or an ECDSA P-256 key (algorithm ES256). When kid is empty
// the key id is the RFC 7638 JWK thumbprint of the public key (base64url of its SHA-256), so
// the same key always gets the same id without anyone having to configure one.
func ParsePrivateKeyPEM(pemBytes []byte, kid string) (Key, error) {
	der, err := singlePEMBlock(pemBytes, "PRIVATE KEY")
	if err != nil {
		return Key{}, fmt.Errorf("token: parse private key: %w", err)
	}
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return Key{}, fmt.Errorf("token: parse private key: %w", err)
	}
	// Only keys that cannot sign (X25519) stop here; newKey refuses other signers (RSA, other
	// curves) by their public half.
	signer, ok := raw.(crypto.Signer)
	if !ok {
		return Key{}, fmt.Errorf("token: parse private key: unsupported key type %T (want Ed25519 or ECDSA P-256)", raw)
	}
	k, err := newKey(signer.Public(), kid)
	if err != nil {
		return Key{}, fmt.Errorf("token: parse private key: %w", err)
	}
	k.signer = signer
	return k, nil
}

// ParsePublicKeyPEM reads a verification-only key from a single PKIX "PUBLIC KEY" PEM block
// (Ed25519 or ECDSA P-256). It is meant for keys that were rotated out of signing but whose
// tokens must still be accepted until they expire. An empty kid means the RFC 7638 thumbprint,
// which matches the id the key had when it signed if that id was derived too.
func ParsePublicKeyPEM(pemBytes []byte, kid string) (Key, error) {
	der, err := singlePEMBlock(pemBytes, "PUBLIC KEY")
	if err != nil {
		return Key{}, fmt.Errorf("token: parse public key: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return Key{}, fmt.Errorf("token: parse public key: %w", err)
	}
	k, err := newKey(pub, kid)
	if err != nil {
		return Key{}, fmt.Errorf("token: parse public key: %w", err)
	}
	return k, nil
}

// singlePEMBlock returns the bytes of the one PEM block in data. More than one block is refused
// because it is ambiguous which key the operator meant.
func singlePEMBlock(data []byte, wantType string) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if block.Type != wantType {
		hint := ""
		if block.Type == "EC PRIVATE KEY" {
			hint = " (convert with: openssl pkcs8 -topk8 -nocrypt)"
		}
		return nil, fmt.Errorf("PEM block type %q, want %q%s", block.Type, wantType, hint)
	}
	if len(block.Headers) != 0 {
		// Headers mean legacy PEM encryption, which we do not support.
		return nil, errors.New("PEM block has headers (encrypted keys are not supported)")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("more than one PEM block")
	}
	return block.Bytes, nil
}

// newKey checks the public key's type, picks its algorithm and sets the kid.
func newKey(pub crypto.PublicKey, kid string) (Key, error) {
	var alg jwa.SignatureAlgorithm
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return Key{}, errors.New("bad Ed25519 public key length")
		}
		alg = jwa.EdDSA()
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("unsupported ECDSA curve %s (want P-256)", p.Curve.Params().Name)
		}
		alg = jwa.ES256()
	default:
		return Key{}, fmt.Errorf("unsupported key type %T (want Ed25519 or ECDSA P-256)", pub)
	}
	if kid == "" {
		var err error
		if kid, err = thumbprint(pub); err != nil {
			return Key{}, err
		}
	} else if err := checkKID(kid); err != nil {
		return Key{}, err
	}
	return Key{id: kid, alg: alg, public: pub}, nil
}

// checkKID refuses ids that are too long or contain anything but printable ASCII: a kid comes
// from configuration, and odd bytes there are far more likely a mistake than intent.
func checkKID(kid string) error {
	if len(kid) > maxKIDLen {
		return fmt.Errorf("kid longer than %d bytes", maxKIDLen)
	}
	for i := 0; i < len(kid); i++ {
		if c := kid[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("kid has a byte outside printable ASCII at offset %d", i)
		}
	}
	return nil
}

// thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url without padding).
func thumbprint(pub crypto.PublicKey) (string, error) {
	jk, err := jwk.Import(pub)
	if err != nil {
		return "", fmt.Errorf("jwk import: %w", err)
	}
	sum, err := jk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jwk thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// LoadOrCreateKey returns the Ed25519 signing key kept in the PKCS#8 PEM file at path,
// generating and saving it (mode 0600; a missing parent directory is created with mode 0700)
// the first time. It exists for the embedded, zero-config mode: a key that survives restarts
// keeps issued tokens, and therefore sessions, valid.
//
// The file is written to a temporary file in the same directory and hard-linked into place,
// which fails if path already exists, so concurrent first starts never clobber or half-read
// each other's key: the loser discards its key and loads the winner's. An existing file that
// cannot be parsed is an error and is left untouched, because replacing it would silently
// invalidate every session. The filesystem must support hard links.
func LoadOrCreateKey(path string) (Key, error) {
	k, err := loadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Key{}, fmt.Errorf("token: create key directory: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("token: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Key{}, fmt.Errorf("token: marshal key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	if err := writeExclusive(path, data); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return Key{}, fmt.Errorf("token: save key: %w", err)
		}
		// Another process (or goroutine) created the key first; use theirs.
	}
	return loadKeyFile(path)
}

// loadKeyFile reads and parses the key file; a missing file is reported as fs.ErrNotExist.
func loadKeyFile(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Key{}, err
		}
		return Key{}, fmt.Errorf("token: read key: %w", err)
	}
	k, err := ParsePrivateKeyPEM(data, "")
	if err != nil {
		return Key{}, fmt.Errorf("token: key file %s: %w", path, err)
	}
	return k, nil
}

// writeExclusive makes path hold data, complete and synced, or fails with an error wrapping
// fs.ErrExist if path already exists. Linking a fully written temporary file is what makes the
// key appear atomically: a concurrent reader sees either no file or the whole key.
func writeExclusive(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	// The link (or a failure) leaves the temporary name behind either way.
	defer os.Remove(tmpName)

	// CreateTemp already uses 0600; Chmod states the requirement instead of relying on it.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmpName, path); err != nil {
		return err
	}
	// Persist the new directory entry so a crash right after start does not lose the key the
	// tokens just issued were signed with. Best effort: not every platform can sync a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
