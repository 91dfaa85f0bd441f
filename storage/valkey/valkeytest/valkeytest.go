// Package valkeytest gives tests a Valkey client with a key prefix of their own on the server at
// $TEST_VALKEY_ADDR, so that tests (and packages) running at once on one server never see each
// other's keys.
package valkeytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/motorpool/motorpool/storage/valkey"
)

// DefaultAddr is the server tests use when TEST_VALKEY_ADDR is unset.
const DefaultAddr = "127.0.0.1:6379"

// Open returns a client on the server at $TEST_VALKEY_ADDR (DefaultAddr when unset) whose keys
// carry the prefix motorpool_test_<random hex>:. When tb ends it deletes every key with that
// prefix and closes the client. When the server cannot be reached it skips tb, or fails it when
// $CI is set, so that CI never passes without having run the Valkey tests.
func Open(tb testing.TB) *valkey.Client {
	tb.Helper()
	addr := os.Getenv("TEST_VALKEY_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	c, err := open(tb, addr)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("valkeytest: Valkey at TEST_VALKEY_ADDR is unreachable: %v", err)
		}
		tb.Skipf("valkeytest: skipping, Valkey is unreachable (set TEST_VALKEY_ADDR to a server's host:port): %v", err)
	}
	return c
}

// OpenOn is Open on the server at addrs (one address for a standalone server, seed nodes for a
// cluster) that the test started itself, such as clustertest's: one that cannot be reached
// fails tb, wherever it runs.
func OpenOn(tb testing.TB, addrs ...string) *valkey.Client {
	tb.Helper()
	c, err := open(tb, addrs...)
	if err != nil {
		tb.Fatalf("valkeytest: Valkey at %s is unreachable: %v", strings.Join(addrs, ","), err)
	}
	return c
}

// open connects under a fresh prefix and registers the cleanup.
func open(tb testing.TB, addrs ...string) (*valkey.Client, error) {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	// No braces: the prefix must not become the keys' cluster hash tag.
	prefix := "motorpool_test_" + hex.EncodeToString(b[:]) + ":"

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := valkey.Open(ctx, valkey.Config{
		Addrs:     addrs,
		KeyPrefix: prefix,
		// Longer than production's: a test machine busy running every package's tests at once
		// can take over a second to accept a local connection, and a flaky test helps no one.
		DialTimeout:    5 * time.Second,
		CommandTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := DeletePrefix(ctx, c); err != nil {
			tb.Errorf("valkeytest: delete keys %s*: %v", prefix, err)
		}
	})
	return c, nil
}

// DeletePrefix deletes every key that starts with c's key prefix, on every node of a cluster.
func DeletePrefix(ctx context.Context, c *valkey.Client) error {
	vk := c.Valkey()
	// The prefix is ours: hex and an underscore, nothing SCAN's glob would interpret.
	match := c.KeyPrefix() + "*"
	for _, node := range vk.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(match).Count(1000).Build()).AsScanEntry()
			if err != nil {
				return err
			}
			// One DEL per key, through the routing client: keys of different slots cannot share
			// a DEL in a cluster, and a replica's keys must be deleted on its primary.
			for _, k := range e.Elements {
				if err := vk.Do(ctx, vk.B().Del().Key(k).Build()).Error(); err != nil {
					return err
				}
			}
			if e.Cursor == 0 {
				break
			}
			cursor = e.Cursor
		}
	}
	return nil
}
