// Package valkey keeps motorpool's shared, short-lived state (auth sessions and tokens; later
// cache entries and rate-limiter buckets) in Valkey or Redis 7, standalone or cluster. One Client
// is opened per process and shared by every state kind, so they share one connection pool.
package valkey

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"
)

// Defaults for Config's zero values: short, so that an unreachable server fails a request (and
// Open) within a second or two instead of holding requests hostage.
const (
	DefaultAddr           = "127.0.0.1:6379"
	DefaultDialTimeout    = time.Second
	DefaultCommandTimeout = 2 * time.Second
	// DefaultLocalCacheBytes: a session hash is about 300 bytes, a denylist entry less, so
	// this holds some 100,000 signed-in callers.
	DefaultLocalCacheBytes = 32 << 20
)

// Config says where the server is and how patient to be with it.
type Config struct {
	// Addrs are the server's host:port addresses: one for a standalone server, any number of
	// seed nodes for a cluster (detected automatically). Empty means DefaultAddr.
	Addrs    []string
	Username string
	Password string
	// DB is the database SELECTed on every connection (standalone only; a cluster has only 0).
	DB int
	// KeyPrefix is put in front of every key, so several deployments or test runs can share a
	// server. It must not contain braces: they would become the cluster hash tag and split one
	// user's keys over several slots, which the multi-key scripts cannot allow.
	KeyPrefix string
	// DialTimeout bounds connecting (DefaultDialTimeout when zero).
	DialTimeout time.Duration
	// CommandTimeout bounds each call (a round trip, perhaps pipelined) when the caller's context
	// has no earlier deadline, and is the connection's read/write deadline, so a server that
	// stops answering is noticed (DefaultCommandTimeout when zero).
	CommandTimeout time.Duration
	// TLS, when not nil, connects over TLS with this configuration.
	TLS *tls.Config
	// ClientName is sent with CLIENT SETNAME, to tell connections apart in CLIENT LIST.
	ClientName string
	// LocalCacheBytes bounds the client-side cache of the shared client (Open), per
	// connection: the auth state's reads of sessions and denylist entries
	// (DefaultLocalCacheBytes when zero).
	LocalCacheBytes int
	// Wrap, when set, wraps the valkey-go client every call goes through: instrumentation,
	// such as counting round trips in benchmarks.
	Wrap func(valkeygo.Client) valkeygo.Client
}

// Client is an open connection pool to the server, with the key prefix and timeouts every user
// of it applies. It is safe for concurrent use.
type Client struct {
	vk             valkeygo.Client
	prefix         string
	commandTimeout time.Duration
}

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if strings.ContainsAny(cfg.KeyPrefix, "{}") {
		return cfg, errors.New("KeyPrefix must not contain braces")
	}
	if len(cfg.Addrs) == 0 {
		cfg.Addrs = []string{DefaultAddr}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	return cfg, nil
}

// clientOption is the valkey-go option every client of this package starts from.
func (cfg Config) clientOption() valkeygo.ClientOption {
	return valkeygo.ClientOption{
		InitAddress: cfg.Addrs,
		Username:    cfg.Username,
		Password:    cfg.Password,
		SelectDB:    cfg.DB,
		TLSConfig:   cfg.TLS,
		ClientName:  cfg.ClientName,
		Dialer:      net.Dialer{Timeout: cfg.DialTimeout},
		// Without it the library waits 10× the keep-alive (10 s) for a silent server.
		ConnWriteTimeout: cfg.CommandTimeout,
	}
}

// Open connects to the server described by cfg and checks that it answers, giving up within
// DialTimeout+CommandTimeout (or earlier, by ctx).
func Open(ctx context.Context, cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("valkey: open: %w", err)
	}
	opt := cfg.clientOption()
	// Server-assisted client-side caching (RESP3 CLIENT TRACKING, opt-in per read: only what
	// is read with DoCache is tracked) for the auth state's identity reads, on one connection
	// per server, as the cache's own client has it (OpenCache): the writes of this process go
	// on the connection that tracks its reads, so the invalidation of a key it changed arrives
	// before the reply to the next command on it (see AuthState.settle).
	opt.PipelineMultiplex = -1
	opt.BlockingPipeline = 1 << 30
	opt.CacheSizeEachConn = cfg.LocalCacheBytes
	if opt.CacheSizeEachConn <= 0 {
		opt.CacheSizeEachConn = DefaultLocalCacheBytes
	}
	// Retries stay on: the library only retries commands marked read-only or retryable, and
	// every write here (INCR, SET, EVALSHA of a script) is neither, so a retried request can
	// never count a failure twice or rotate a token twice.
	return connect(ctx, cfg, opt, "open")
}

// connect creates a client with opt for cfg (defaults filled in), wrapped by cfg.Wrap, and
// checks that the server answers within DialTimeout+CommandTimeout (or earlier, by ctx),
// closing it if not. what names the caller in errors.
func connect(ctx context.Context, cfg Config, opt valkeygo.ClientOption, what string) (*Client, error) {
	vk, err := valkeygo.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("valkey: %s %s: %w", what, strings.Join(cfg.Addrs, ","), err)
	}
	if cfg.Wrap != nil {
		vk = cfg.Wrap(vk)
	}
	c := &Client{vk: vk, prefix: cfg.KeyPrefix, commandTimeout: cfg.CommandTimeout}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout+cfg.CommandTimeout)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		vk.Close()
		return nil, fmt.Errorf("valkey: %s %s: %w", what, strings.Join(cfg.Addrs, ","), err)
	}
	return c, nil
}

// Valkey returns the underlying valkey-go client, for the other state kinds that share this
// pool. Keys they use must go through Key so they carry the prefix.
func (c *Client) Valkey() valkeygo.Client { return c.vk }

// KeyPrefix returns the prefix every key of this client carries.
func (c *Client) KeyPrefix() string { return c.prefix }

// Key returns name with the client's key prefix.
func (c *Client) Key(name string) string { return c.prefix + name }

// Ping reports whether the server answers.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := c.vk.Do(ctx, c.vk.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("valkey: ping: %w", err)
	}
	return nil
}

// Close closes the connections. Everything built on the client stops working.
func (c *Client) Close() error {
	c.vk.Close()
	return nil
}

// withTimeout bounds one call by the command timeout, unless ctx already ends sooner.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= c.commandTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.commandTimeout)
}
