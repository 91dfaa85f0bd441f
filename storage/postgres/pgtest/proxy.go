package pgtest

import (
	"context"
	"net/url"
	"testing"

	"github.com/motorpool/motorpool/internal/testproxy"
	"github.com/motorpool/motorpool/storage/postgres"
)

// Proxy is the TCP relay outage tests put in front of the server.
type Proxy = testproxy.Proxy

// NewProxy relays a free port on 127.0.0.1 to target (host:port) until tb ends.
func NewProxy(tb testing.TB, target string) *Proxy { return testproxy.New(tb, target) }

// OpenBehindProxy creates a fresh database with NewDatabase, migrates it directly, and opens
// a store on it through a new Proxy with cfg (whose URL it sets). Both end with tb.
func OpenBehindProxy(tb testing.TB, cfg postgres.Config) (*postgres.Store, *Proxy) {
	tb.Helper()
	ctx := context.Background()
	dbURL := NewDatabase(tb)
	direct, err := postgres.Open(ctx, postgres.Config{URL: dbURL})
	if err != nil {
		tb.Fatalf("pgtest: open: %v", err)
	}
	_, err = direct.Migrate(ctx)
	_ = direct.Close()
	if err != nil {
		tb.Fatalf("pgtest: migrate: %v", err)
	}
	var p *Proxy
	cfg.URL, p = BehindProxy(tb, dbURL)
	s, err := postgres.Open(ctx, cfg)
	if err != nil {
		tb.Fatalf("pgtest: open through the proxy: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	// Runs first: a store closing through a held proxy would wait for its goodbyes.
	tb.Cleanup(p.Refuse)
	return s, p
}

// BehindProxy puts a new Proxy in front of the server of the postgres:// URL dbURL and returns
// the URL that reaches the same database through it.
func BehindProxy(tb testing.TB, dbURL string) (string, *Proxy) {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	p := NewProxy(tb, u.Host)
	u.Host = p.Addr()
	return u.String(), p
}
