package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/impl"
	"github.com/motorpool/motorpool/mail"
	"github.com/motorpool/motorpool/password"
	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/memory"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/token"
	"github.com/motorpool/motorpool/tracing"
)

// authDeps is everything authentication needs, opened from the configuration.
type authDeps struct {
	service *auth.Service
	issuer  *token.Issuer
	hasher  *password.Hasher // nil when the users domain is not served
	checks  []impl.Check
	valkey  *valkey.Client // nil in embedded mode
	close   func()
}

func openAuth(ctx context.Context, cfg config, log *slog.Logger, store storage.Store) (*authDeps, error) {
	d := &authDeps{close: func() {}}
	d.checks = []impl.Check{{Name: "database", Ping: store.Ping}}

	var state storage.AuthState
	if cfg.ValkeyAddr != "" {
		client, err := valkey.Open(ctx, valkeyConfig(cfg, "motorpool"))
		if err != nil {
			return nil, fmt.Errorf("open Valkey at %s: %w", cfg.ValkeyAddr, err)
		}
		d.close = func() { _ = client.Close() }
		d.valkey = client
		d.checks = append(d.checks, impl.Check{Name: "valkey", Ping: client.Ping})
		state = valkey.NewAuthState(client, valkey.WithLocalTTL(cfg.AuthStateCacheTTL))
	} else {
		// Embedded mode: one process, state in memory, saved at shutdown so that a restart
		// keeps sessions (a crash loses them: everyone signs in again).
		mem := memory.NewAuthState(nil)
		snapshot := filepath.Join(cfg.DataDir, "auth-state.json")
		if err := mem.LoadFile(snapshot); err != nil {
			return nil, fmt.Errorf("DATA_DIR: %w", err)
		}
		d.close = func() {
			if err := mem.SaveFile(snapshot); err != nil {
				log.Error("saving the auth state failed; sessions will not survive this restart", "error", err.Error())
			}
			_ = mem.Close()
		}
		state = mem
	}

	var err error
	d.issuer, err = openIssuer(cfg)
	if err != nil {
		d.close()
		return nil, err
	}

	// A process that does not serve the users domain signs no one in, so it has no use for
	// the hasher (whose start-up hash costs 19 MiB) or the mailer: both stay nil.
	var hasher auth.PasswordHasher
	var mailer auth.Mailer
	if cfg.serves(api.DomainUsers) {
		d.hasher = password.NewHasher(password.OWASP, 0)
		hasher, mailer = d.hasher, mail.LogMailer{Log: log}
		if cfg.SMTP.Host != "" {
			m, err := mail.NewSMTPMailer(cfg.SMTP)
			if err != nil {
				d.close()
				return nil, fmt.Errorf("SMTP: %w", err)
			}
			mailer = m
		}
	}
	d.service, err = auth.NewService(ctx, store, state, tokens{d.issuer}, hasher, mailer, cfg.Auth, auth.WithLogger(log))
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// openCache opens the cache: Valkey (with client-side caching) when Valkey is configured,
// else an in-process LRU; nil when CACHE_ENABLED=false.
func openCache(ctx context.Context, cfg config, obs storage.CacheObserver) (storage.Cache, error) {
	if !cfg.CacheEnabled {
		return nil, nil
	}
	if cfg.ValkeyAddr == "" {
		return memory.NewCache(memory.CacheConfig{MaxEntries: cfg.CacheMax, Observer: obs}), nil
	}
	c, err := valkey.OpenCache(ctx, valkeyConfig(cfg, "motorpool-cache"), valkey.CacheOptions{Observer: obs})
	if err != nil {
		return nil, fmt.Errorf("open the Valkey cache at %s: %w", cfg.ValkeyAddr, err)
	}
	return c, nil
}

// valkeyConfig is the connection to VALKEY_URL; clientName tells the auth state's connection
// from the cache's apart in CLIENT LIST.
func valkeyConfig(cfg config, clientName string) valkey.Config {
	vc := valkey.Config{
		Addrs: []string{cfg.ValkeyAddr}, Username: cfg.ValkeyUser, Password: cfg.ValkeyPassword,
		DB: cfg.ValkeyDB, KeyPrefix: cfg.ValkeyPrefix, ClientName: clientName,
	}
	if cfg.ValkeyTLS {
		vc.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.Tracing.on() { // a span per round trip of a traced call
		vc.Wrap = tracing.Valkey(nil)
	}
	return vc
}

// openIssuer builds the token issuer: it signs with signingKey's key and accepts
// JWT_PUBLIC_KEY_FILES too. Without a private key under Valkey (which the configuration
// allows only to a process serving vehicles alone) it only verifies.
func openIssuer(cfg config) (*token.Issuer, error) {
	verifyOnly, err := verifyKeys(cfg)
	if err != nil {
		return nil, err
	}
	tc := token.Config{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, AccessTTL: cfg.Auth.AccessTTL, RefreshTTL: cfg.Auth.RefreshTTL, Skew: cfg.Auth.Skew}
	if cfg.ValkeyAddr != "" && cfg.JWTPrivateKeyFile == "" {
		iss, err := token.NewVerifier(tc, verifyOnly...)
		if err != nil {
			return nil, fmt.Errorf("JWT_PUBLIC_KEY_FILES: %w", err)
		}
		return iss, nil
	}
	signing, err := signingKey(cfg)
	if err != nil {
		return nil, err
	}
	iss, err := token.NewIssuer(tc, signing, verifyOnly...)
	if err != nil {
		return nil, fmt.Errorf("JWT keys: %w", err)
	}
	return iss, nil
}

// signingKey loads JWT_PRIVATE_KEY_FILE, or in embedded mode a key generated once under the
// data directory, so that restarts keep sessions valid. With Valkey, a generated key would
// sign tokens no other instance accepts: there the file is required.
func signingKey(cfg config) (token.Key, error) {
	if cfg.JWTPrivateKeyFile == "" && cfg.ValkeyAddr != "" {
		return token.Key{}, fmt.Errorf("JWT_PRIVATE_KEY_FILE: must be set to sign tokens when Valkey is configured")
	}
	if cfg.JWTPrivateKeyFile != "" {
		b, err := os.ReadFile(cfg.JWTPrivateKeyFile)
		if err != nil {
			return token.Key{}, fmt.Errorf("JWT_PRIVATE_KEY_FILE: %w", err)
		}
		k, err := token.ParsePrivateKeyPEM(b, "")
		if err != nil {
			return token.Key{}, fmt.Errorf("JWT_PRIVATE_KEY_FILE %s: %w", cfg.JWTPrivateKeyFile, err)
		}
		return k, nil
	}
	path := filepath.Join(cfg.DataDir, "jwt-signing-key.pem")
	k, err := token.LoadOrCreateKey(path)
	if err != nil {
		return token.Key{}, fmt.Errorf("DATA_DIR signing key %s: %w", path, err)
	}
	return k, nil
}

// verifyKeys loads JWT_PUBLIC_KEY_FILES: the keys still accepted besides the signing key.
func verifyKeys(cfg config) ([]token.Key, error) {
	var keys []token.Key
	for _, f := range cfg.JWTPublicKeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("JWT_PUBLIC_KEY_FILES: %w", err)
		}
		k, err := token.ParsePublicKeyPEM(b, "")
		if err != nil {
			return nil, fmt.Errorf("JWT_PUBLIC_KEY_FILES %s: %w", f, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// tokens adapts token.Issuer to the auth package's view of it.
type tokens struct{ i *token.Issuer }

func (t tokens) Issue(userID int64, sid string, role storage.Role, typ auth.TokenType, expiresAt time.Time) (string, auth.Claims, error) {
	s, c, err := t.i.Issue(userID, sid, string(role), token.Type(typ), expiresAt)
	return s, claims(c), err
}

func (t tokens) Verify(s string, typ auth.TokenType) (auth.Claims, error) {
	c, err := t.i.Verify(s, token.Type(typ))
	return claims(c), err
}

func claims(c token.Claims) auth.Claims {
	return auth.Claims{UserID: c.Subject, SessionID: c.SessionID, ID: c.ID, Role: storage.Role(c.Role), ExpiresAt: c.ExpiresAt}
}
