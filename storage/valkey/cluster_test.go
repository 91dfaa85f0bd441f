package valkey_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/storagetest"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/clustertest"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

// The package's cluster (three primaries of its own, see clustertest) is started by the first
// TestCluster* and stopped here.
func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

// The conformance suites again, on a cluster: every multi-key script must find its keys in
// one slot (one user's keys share the {userId} tag), and the pipelines split by node.

func TestClusterAuthState(t *testing.T) {
	t.Parallel()
	storagetest.RunAuthState(t, func(t *testing.T) storage.AuthState {
		return valkey.NewAuthState(clustertest.Open(t))
	})
}

func TestClusterCache(t *testing.T) {
	t.Parallel()
	runCacheSuites(t, clustertest.Open)
}

func TestClusterLimiter(t *testing.T) {
	t.Parallel()
	storagetest.RunLimiter(t, func(t *testing.T) storage.Limiter {
		return valkey.NewLimiter(clustertest.Open(t), 0)
	})
}

// TestClusterLimiterInstancesShareBuckets: three instances, each with its own connections to
// every node, decide one bucket exactly.
func TestClusterLimiterInstancesShareBuckets(t *testing.T) {
	t.Parallel()
	limiterInstancesShareBuckets(t, clustertest.Open(t))
}

// TestClusterIdentity: the client-side cache on a cluster, where each node tracks the keys
// read from it: warm reads make no round trip, and a change is seen at once on the instance
// that made it and soon on another. Not parallel, as the single-server tests are not: the
// other-instance bound is a latency.
func TestClusterIdentity(t *testing.T) {
	c := clustertest.Open(t)
	t.Run("WarmNoRoundTrip", func(t *testing.T) { identityWarmNoRoundTrip(t, c) })
	t.Run("InvalidatedAtOnce", func(t *testing.T) { identityInvalidatedAtOnce(t, c) })
	t.Run("InvalidatedOnOtherInstance", func(t *testing.T) { identityInvalidatedOnOtherInstance(t, c) })
}

// TestClusterKeysSpreadAndCleanedUp: keys of different tags land on every node, so the tests
// above exercise cross-node pipelines, and valkeytest's cleanup finds them on every node.
func TestClusterKeysSpreadAndCleanedUp(t *testing.T) {
	t.Parallel()
	c := clustertest.Open(t)
	vk := c.Valkey()
	for i := range 60 {
		k := c.Key("user:{" + strconv.Itoa(i) + "}")
		if err := vk.Do(t.Context(), vk.B().Set().Key(k).Value("v").Build()).Error(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	perNode := func() map[string]int {
		t.Helper()
		n := map[string]int{}
		for addr, node := range vk.Nodes() {
			var cursor uint64
			for {
				e, err := node.Do(t.Context(), node.B().Scan().Cursor(cursor).Match(c.KeyPrefix()+"*").Count(1000).Build()).AsScanEntry()
				if err != nil {
					t.Fatalf("SCAN on %s: %v", addr, err)
				}
				n[addr] += len(e.Elements)
				if cursor = e.Cursor; cursor == 0 {
					break
				}
			}
		}
		return n
	}
	before := perNode()
	if len(before) != clustertest.Primaries {
		t.Fatalf("the client knows %d nodes, want %d", len(before), clustertest.Primaries)
	}
	for addr, n := range before {
		if n == 0 {
			t.Errorf("no key of 60 hash tags on node %s: %v", addr, before)
		}
	}
	if err := valkeytest.DeletePrefix(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	for addr, n := range perNode() {
		if n != 0 {
			t.Errorf("%d keys left on node %s after DeletePrefix", n, addr)
		}
	}
}
