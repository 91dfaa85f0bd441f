// Package clustertest runs a private Valkey Cluster (three primaries, no replicas, on free
// ports, in a temporary directory) for the tests of one package, and gives each test a client
// on it with a key prefix of its own, as valkeytest.Open does on the shared server.
//
// The cluster is started by the first test that asks for it, once per test binary (starting
// one takes a few seconds), and stopped when the package's tests end, so the package's TestMain
// must be
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }
//
// The servers are valkey-server and valkey-cli from PATH, else redis-server and redis-cli
// (Redis 7 or later: the cluster bus port is set with --cluster-port). Without them the tests
// that need the cluster are skipped, or fail when $CI is set, so that CI never passes without
// having run them.
package clustertest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// startTimeout bounds starting the shared cluster: three servers, the create, the agreement.
const startTimeout = time.Minute

// shared is the package's cluster, started by the first Addrs.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// Addrs returns the seed addresses of the test package's cluster, starting it on first use.
// Without the binaries it skips tb (fails it when $CI is set); a cluster that would not start
// fails tb, and every later test that asks for it.
func Addrs(tb testing.TB) []string {
	tb.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		shared.cluster, shared.err = Start(ctx)
	})
	if err := shared.err; err != nil {
		if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") == "" {
			tb.Skipf("clustertest: skipping: %v", err)
		}
		tb.Fatalf("clustertest: %v", err)
	}
	return shared.cluster.Addrs()
}

// Open returns a client on the package's cluster whose keys carry a prefix of their own; when
// tb ends it deletes them, on every node, and closes the client (valkeytest.OpenOn). It fails
// tb unless valkey-go sees a cluster, so that a test meant for one never passes on less.
func Open(tb testing.TB) *valkey.Client {
	tb.Helper()
	c := valkeytest.OpenOn(tb, Addrs(tb)...)
	if m := c.Valkey().Mode(); m != valkeygo.ClientModeCluster {
		tb.Fatalf("clustertest: the client is in mode %q, want %q", m, valkeygo.ClientModeCluster)
	}
	return c
}

// Main runs the package's tests and then stops the cluster, if a test started one. It
// returns m.Run's exit code.
func Main(m *testing.M) int {
	code := m.Run()
	// Marks the once done if no test started the cluster, or waits for (and synchronises
	// with) the start that did: no test can start one after this.
	shared.once.Do(func() {})
	if shared.cluster != nil {
		shared.cluster.Stop()
	}
	return code
}
