package valkeymetrics_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	valkeygo "github.com/valkey-io/valkey-go"

	"github.com/motorpool/motorpool/storage/valkey/clustertest"
	"github.com/motorpool/motorpool/storage/valkey/valkeymetrics"
	"github.com/motorpool/motorpool/storage/valkey/valkeytest"
)

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m)) }

// families are the service's, as the wiring passes them.
var families = []string{"user", "user:email", "users:all", "vehicle", "vehicles:all", "vehicles:user", "session", "sessions", "rate_limit"}

// scrape gathers c once through a pedantic registry (which checks every metric against its
// description) and returns the samples by metric name and label values.
func scrape(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%s}", l.GetName(), l.GetValue())
			}
			out[name] = value(mf.GetType(), m)
		}
	}
	return out
}

func value(typ dto.MetricType, m *dto.Metric) float64 {
	if typ == dto.MetricType_COUNTER {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func set(t *testing.T, vk valkeygo.Client, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := vk.Do(context.Background(), vk.B().Set().Key(k).Value("x").Ex(time.Minute).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCollect(t *testing.T) {
	c := valkeytest.Open(t)
	vk, p := c.Valkey(), c.KeyPrefix()
	set(t, vk, p+"user:1", p+"user:2", p+"user:email:ada@example.com", p+"users:all", p+"users:all:v1:limit=10",
		p+"vehicle:7", p+"vehicles:user:1", p+"vehicles:user:1:v3:cursor=", p+"session:{1}:{s}", p+"sessions:{1}",
		p+"rate_limit:ip:{10.0.0.1}:global", p+"refresh_token:{1}:{s}", p+"unknown")
	// A key of another prefix, which must not be counted.
	set(t, vk, p[:len(p)-1]+"x:user:3")
	t.Cleanup(func() { vk.Do(context.Background(), vk.B().Del().Key(p[:len(p)-1]+"x:user:3").Build()) })

	col := valkeymetrics.New(vk, valkeymetrics.Options{Prefix: p, Families: families})
	got := scrape(t, col)
	node := ""
	for n := range vk.Nodes() {
		node = "{node=" + n + "}"
	}
	if got["motorpool_valkey_up"] != 1 {
		t.Fatalf("up = %v; scrape: %v", got["motorpool_valkey_up"], got)
	}
	if used, peak := got["motorpool_valkey_memory_used_bytes"+node], got["motorpool_valkey_memory_peak_bytes"+node]; used <= 0 || peak < used {
		t.Errorf("memory used %v, peak %v", used, peak)
	}
	if n := got["motorpool_valkey_connected_clients"+node]; n < 1 {
		t.Errorf("connected clients %v", n)
	}
	for _, name := range []string{"motorpool_valkey_memory_max_bytes", "motorpool_valkey_evicted_keys_total", "motorpool_valkey_expired_keys_total",
		"motorpool_valkey_keyspace_hits_total", "motorpool_valkey_keyspace_misses_total"} {
		if _, ok := got[name+node]; !ok {
			t.Errorf("no %s%s", name, node)
		}
	}
	if d := got["motorpool_valkey_scrape_duration_seconds"]; d <= 0 || d > 2 {
		t.Errorf("scrape duration %v s", d)
	}

	keys := map[string]float64{}
	for _, f := range append(families, valkeymetrics.OtherFamily) {
		keys[f] = got["motorpool_valkey_keys{family="+f+"}"]
	}
	want := map[string]float64{"user": 2, "user:email": 1, "users:all": 2, "vehicle": 1, "vehicles:all": 0, "vehicles:user": 2,
		"session": 1, "sessions": 1, "rate_limit": 1, "other": 2}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("keys by family (-want +got):\n%s", diff)
	}
	if got["motorpool_valkey_keys_scan_truncated"] != 0 {
		t.Error("a scan of 13 keys reports truncated")
	}

	// The counters move: the commands this test sends, a hit and a miss.
	if err := vk.Do(context.Background(), vk.B().Get().Key(p+"user:1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	_ = vk.Do(context.Background(), vk.B().Get().Key(p+"absent").Build()).Error()
	again := scrape(t, col)
	for _, name := range []string{"motorpool_valkey_commands_processed_total", "motorpool_valkey_keyspace_hits_total", "motorpool_valkey_keyspace_misses_total"} {
		if again[name+node] <= got[name+node] {
			t.Errorf("%s went from %v to %v", name, got[name+node], again[name+node])
		}
	}
}

// The scan stops at its cap on keys and on time, and says so.
func TestCollectScanBounded(t *testing.T) {
	c := valkeytest.Open(t)
	vk, p := c.Valkey(), c.KeyPrefix()
	cmds := make(valkeygo.Commands, 0, 500)
	for i := range 500 {
		cmds = append(cmds, vk.B().Set().Key(p+"user:"+strconv.Itoa(i)).Value("x").Ex(time.Minute).Build())
	}
	for _, r := range vk.DoMulti(context.Background(), cmds...) {
		if err := r.Error(); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name string
		opt  valkeymetrics.Options
		max  float64
	}{
		{"keys", valkeymetrics.Options{ScanCount: 10, ScanMaxKeys: 50}, 50},
		{"time", valkeymetrics.Options{ScanTimeout: time.Nanosecond}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opt.Prefix, tc.opt.Families = p, families
			got := scrape(t, valkeymetrics.New(vk, tc.opt))
			if got["motorpool_valkey_up"] != 1 {
				t.Fatalf("up = %v", got["motorpool_valkey_up"])
			}
			if got["motorpool_valkey_keys_scan_truncated"] != 1 {
				t.Error("the scan of 500 keys is not reported truncated")
			}
			if n := got["motorpool_valkey_keys{family=user}"]; n > tc.max {
				t.Errorf("%v keys counted, over the cap of %v", n, tc.max)
			}
		})
	}
	got := scrape(t, valkeymetrics.New(vk, valkeymetrics.Options{Prefix: p, Families: families}))
	if got["motorpool_valkey_keys{family=user}"] != 500 || got["motorpool_valkey_keys_scan_truncated"] != 0 {
		t.Errorf("uncapped: %v user keys, truncated %v", got["motorpool_valkey_keys{family=user}"], got["motorpool_valkey_keys_scan_truncated"])
	}
}

// A server that stops answering, then one that is gone: the scrape ends within its timeout
// with up 0, and figures again once the server is back.
func TestCollectOutage(t *testing.T) {
	srv := startServer(t)
	// The client is as patient as the service's (storage/valkey's defaults), longer than the
	// scrape's timeout: the collector's own bound must hold.
	vk, err := valkeygo.NewClient(valkeygo.ClientOption{InitAddress: []string{srv.addr}, DisableCache: true,
		Dialer: net.Dialer{Timeout: time.Second}, ConnWriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vk.Close)
	const timeout = 300 * time.Millisecond
	col := valkeymetrics.New(vk, valkeymetrics.Options{Prefix: "p:", Families: families, Timeout: timeout})
	if got := scrape(t, col); got["motorpool_valkey_up"] != 1 {
		t.Fatalf("up = %v with the server running", got["motorpool_valkey_up"])
	}

	down := func(what string) {
		t.Helper()
		start := time.Now()
		got := scrape(t, col)
		took := time.Since(start)
		if took > timeout+200*time.Millisecond {
			t.Errorf("%s: the scrape took %v, over its timeout %v", what, took, timeout)
		}
		t.Logf("%s: the scrape took %v", what, took)
		if got["motorpool_valkey_up"] != 0 {
			t.Errorf("%s: up = %v", what, got["motorpool_valkey_up"])
		}
		if _, ok := got["motorpool_valkey_keys_scan_truncated"]; ok {
			t.Errorf("%s: key counts reported: %v", what, got)
		}
	}
	// Stopped: the connection stays open and nothing answers.
	srv.signal(t, syscall.SIGSTOP)
	down("server silent")
	down("server silent, again")
	srv.signal(t, syscall.SIGCONT)
	deadline := time.Now().Add(5 * time.Second)
	for scrape(t, col)["motorpool_valkey_up"] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("up stays 0 after the server resumed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Killed: connections are refused.
	srv.signal(t, syscall.SIGKILL)
	_ = srv.cmd.Wait()
	down("server gone")
}

type server struct {
	addr string
	cmd  *exec.Cmd
}

// startServer runs a private redis-server on a free port, without persistence, until t ends.
func startServer(t *testing.T) *server {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not on PATH")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &server{addr: "127.0.0.1:" + strconv.Itoa(port),
		cmd: exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			conn.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s never listened: %v", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// On a cluster every node's figures carry its address, and the keys of every primary are
// counted once.
func TestCollectCluster(t *testing.T) {
	c := clustertest.Open(t)
	vk, p := c.Valkey(), c.KeyPrefix()
	var keys []string
	for i := range 30 {
		keys = append(keys, p+"user:"+strconv.Itoa(i), p+"session:{"+strconv.Itoa(i)+"}:{s}")
	}
	set(t, vk, keys...)
	got := scrape(t, valkeymetrics.New(vk, valkeymetrics.Options{Prefix: p, Families: families}))
	if got["motorpool_valkey_up"] != 1 {
		t.Fatalf("up = %v", got["motorpool_valkey_up"])
	}
	nodes := vk.Nodes()
	if len(nodes) < 3 {
		t.Fatalf("the client knows %d nodes", len(nodes))
	}
	for addr := range nodes {
		if got["motorpool_valkey_memory_used_bytes{node="+addr+"}"] <= 0 {
			t.Errorf("no memory figure for node %s", addr)
		}
	}
	if u, s := got["motorpool_valkey_keys{family=user}"], got["motorpool_valkey_keys{family=session}"]; u != 30 || s != 30 {
		t.Errorf("keys: %v user, %v session; want 30 each", u, s)
	}
}
