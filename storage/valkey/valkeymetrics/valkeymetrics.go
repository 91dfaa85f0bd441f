// Package valkeymetrics is a Prometheus collector of a Valkey (or Redis 7) server's own
// figures, read at scrape time: memory, evictions and expirations, keyspace hits and misses,
// clients, commands processed (INFO), and how many keys each key family holds under the
// service's prefix (a bounded SCAN, never KEYS).
//
// Every scrape is bounded by Options.Timeout: a server that is down or silent makes the scrape
// answer within it, with motorpool_valkey_up 0, instead of holding /metrics.
//
// With a Valkey Cluster, INFO is read from every node the client knows (valkey-go's
// Client.Nodes, replicas included when the client connects to them), and each node's figures
// carry its address in the label node; sum them by node for the cluster's. Keys are counted
// on the primaries only (a replica holds copies of its primary's keys), and the families'
// counts are the sums over them. A standalone server is a cluster of one node.
package valkeymetrics

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	valkeygo "github.com/valkey-io/valkey-go"
)

// Defaults for Options' zero values.
const (
	// DefaultTimeout bounds a whole scrape: every node's INFO and the key scan.
	DefaultTimeout = 2 * time.Second
	// DefaultScanCount is SCAN's COUNT: about how many keys the server visits per call.
	DefaultScanCount = 1000
	// DefaultScanMaxKeys bounds the keys one scrape's scan visits, over all primaries.
	DefaultScanMaxKeys = 100_000
)

// OtherFamily is the family label of keys under the prefix that no configured family names.
const OtherFamily = "other"

// Options say what to count and how patient to be.
type Options struct {
	// Prefix is the service's key prefix: the scan matches Prefix* and families are read
	// after it.
	Prefix string
	// Families are the key families counted, as they follow the prefix: a key belongs to the
	// longest family f it equals or starts with f+":" ("user:email:x" is user:email, not user).
	// Keys of none count as OtherFamily.
	Families []string
	// Timeout bounds a scrape (DefaultTimeout when zero).
	Timeout time.Duration
	// ScanCount is SCAN's COUNT hint (DefaultScanCount when zero).
	ScanCount int64
	// ScanMaxKeys bounds the keys a scrape's scan visits, over all primaries: it stops after
	// ScanMaxKeys/ScanCount calls (each visits about ScanCount keys) and never counts more
	// than ScanMaxKeys keys (DefaultScanMaxKeys when zero).
	ScanMaxKeys int
	// ScanTimeout bounds the scan's share of the scrape (half the Timeout when zero). The
	// scan stops early, reporting the sample as truncated, when either bound is reached.
	ScanTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ScanCount <= 0 {
		o.ScanCount = DefaultScanCount
	}
	if o.ScanMaxKeys <= 0 {
		o.ScanMaxKeys = DefaultScanMaxKeys
	}
	if o.ScanTimeout <= 0 || o.ScanTimeout > o.Timeout {
		o.ScanTimeout = o.Timeout / 2
	}
	return o
}

// Collector reads the server's figures on every Collect. It is safe for concurrent use:
// scrapes that overlap share one reading of the server.
type Collector struct {
	vk       valkeygo.Client
	opt      Options
	families []string // longest first, so the first match is the longest
	match    string   // the SCAN pattern: the prefix, glob-escaped, and *

	mu     sync.Mutex
	flight *flight // the reading under way, nil when none
}

// flight is one reading of the server, shared by the scrapes that overlap it.
type flight struct {
	done    chan struct{}
	metrics []prometheus.Metric
	up      bool
}

// New returns a collector of vk's server (a standalone, sentinel or cluster client).
func New(vk valkeygo.Client, opt Options) *Collector {
	opt = opt.withDefaults()
	fams := slices.DeleteFunc(slices.Clone(opt.Families), func(f string) bool { return f == OtherFamily || f == "" })
	slices.Sort(fams)
	fams = slices.Compact(fams)
	slices.SortStableFunc(fams, func(a, b string) int { return len(b) - len(a) })
	return &Collector{vk: vk, opt: opt, families: fams, match: globEscape(opt.Prefix) + "*"}
}

var (
	upDesc = prometheus.NewDesc("motorpool_valkey_up",
		"1 when every Valkey node answered the last scrape within its timeout, else 0.", nil, nil)
	scrapeDesc = prometheus.NewDesc("motorpool_valkey_scrape_duration_seconds",
		"Time the last scrape of Valkey's figures took.", nil, nil)
	memUsedDesc = prometheus.NewDesc("motorpool_valkey_memory_used_bytes",
		"Memory the node's data uses (INFO used_memory).", []string{"node"}, nil)
	memPeakDesc = prometheus.NewDesc("motorpool_valkey_memory_peak_bytes",
		"Most memory the node's data has used (INFO used_memory_peak).", []string{"node"}, nil)
	memMaxDesc = prometheus.NewDesc("motorpool_valkey_memory_max_bytes",
		"The node's maxmemory, 0 for no limit (INFO maxmemory).", []string{"node"}, nil)
	evictedDesc = prometheus.NewDesc("motorpool_valkey_evicted_keys_total",
		"Keys the node evicted to stay under maxmemory (INFO evicted_keys).", []string{"node"}, nil)
	expiredDesc = prometheus.NewDesc("motorpool_valkey_expired_keys_total",
		"Keys the node deleted when their TTL ran out (INFO expired_keys).", []string{"node"}, nil)
	hitsDesc = prometheus.NewDesc("motorpool_valkey_keyspace_hits_total",
		"Key lookups that found the key (INFO keyspace_hits).", []string{"node"}, nil)
	missesDesc = prometheus.NewDesc("motorpool_valkey_keyspace_misses_total",
		"Key lookups that did not find the key (INFO keyspace_misses).", []string{"node"}, nil)
	clientsDesc = prometheus.NewDesc("motorpool_valkey_connected_clients",
		"Client connections open to the node (INFO connected_clients).", []string{"node"}, nil)
	commandsDesc = prometheus.NewDesc("motorpool_valkey_commands_processed_total",
		"Commands the node has processed (INFO total_commands_processed).", []string{"node"}, nil)
	keysDesc = prometheus.NewDesc("motorpool_valkey_keys",
		"Keys under the service's prefix by key family, in the last scrape's bounded scan of the primaries (a lower bound when truncated).", []string{"family"}, nil)
	truncatedDesc = prometheus.NewDesc("motorpool_valkey_keys_scan_truncated",
		"1 when the last scrape's key scan stopped at its cap on keys or time before visiting every key.", nil, nil)
)

// infoFields are the INFO fields exported per node, with their metric and type.
var infoFields = []struct {
	field string
	desc  *prometheus.Desc
	typ   prometheus.ValueType
}{
	{"used_memory", memUsedDesc, prometheus.GaugeValue},
	{"used_memory_peak", memPeakDesc, prometheus.GaugeValue},
	{"maxmemory", memMaxDesc, prometheus.GaugeValue},
	{"evicted_keys", evictedDesc, prometheus.CounterValue},
	{"expired_keys", expiredDesc, prometheus.CounterValue},
	{"keyspace_hits", hitsDesc, prometheus.CounterValue},
	{"keyspace_misses", missesDesc, prometheus.CounterValue},
	{"connected_clients", clientsDesc, prometheus.GaugeValue},
	{"total_commands_processed", commandsDesc, prometheus.CounterValue},
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upDesc
	ch <- scrapeDesc
	for _, f := range infoFields {
		ch <- f.desc
	}
	ch <- keysDesc
	ch <- truncatedDesc
}

// Collect implements prometheus.Collector. It returns within the timeout whatever the
// server does: a reading still under way then is left to finish on its own (its commands
// carry the same deadline) and the scrape reports up 0.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	f := c.start()
	timer := time.NewTimer(c.opt.Timeout)
	defer timer.Stop()
	up := false
	select {
	case <-f.done:
		up = f.up
		for _, m := range f.metrics {
			ch <- m
		}
	case <-timer.C:
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, boolValue(up))
	ch <- prometheus.MustNewConstMetric(scrapeDesc, prometheus.GaugeValue, time.Since(start).Seconds())
}

// start joins the reading under way or begins one.
func (c *Collector) start() *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flight != nil {
		return c.flight
	}
	f := &flight{done: make(chan struct{})}
	c.flight = f
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.opt.Timeout)
		defer cancel()
		f.metrics, f.up = c.read(ctx)
		c.mu.Lock()
		c.flight = nil
		c.mu.Unlock()
		close(f.done)
	}()
	return f
}

// nodeInfo is what one node's INFO said.
type nodeInfo struct {
	addr    string
	client  valkeygo.Client
	fields  map[string]string
	err     error
	replica bool
}

// read asks every node for INFO at once, then scans the primaries' keys. up is whether
// every command succeeded.
func (c *Collector) read(ctx context.Context) (ms []prometheus.Metric, up bool) {
	nodes := c.vk.Nodes()
	infos := make([]nodeInfo, 0, len(nodes))
	for _, addr := range slices.Sorted(maps.Keys(nodes)) {
		infos = append(infos, nodeInfo{addr: addr, client: nodes[addr]})
	}
	var wg sync.WaitGroup
	for i := range infos {
		wg.Go(func() {
			n := &infos[i]
			var s string
			s, n.err = n.client.Do(ctx, n.client.B().Info().Build()).ToString()
			if n.err == nil {
				n.fields = parseInfo(s)
				n.replica = n.fields["role"] == "slave" || n.fields["role"] == "replica"
			}
		})
	}
	wg.Wait()

	up = len(infos) > 0
	var primaries []valkeygo.Client
	for _, n := range infos {
		if n.err != nil {
			up = false
			continue
		}
		for _, f := range infoFields {
			v, ok := n.fields[f.field]
			if !ok {
				continue // an older server, or a field this server renamed
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			ms = append(ms, prometheus.MustNewConstMetric(f.desc, f.typ, x, n.addr))
		}
		if !n.replica {
			primaries = append(primaries, n.client)
		}
	}
	if !up {
		// Keys counted on some primaries only would read as keys lost.
		return ms, false
	}
	counts, truncated, err := c.scan(ctx, primaries)
	if err != nil {
		return ms, false
	}
	for _, f := range append(slices.Sorted(slices.Values(c.families)), OtherFamily) {
		ms = append(ms, prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(counts[f]), f))
	}
	ms = append(ms, prometheus.MustNewConstMetric(truncatedDesc, prometheus.GaugeValue, boolValue(truncated)))
	return ms, true
}

// scan counts the keys under the prefix by family, on each primary in turn, within the
// scan's bounds on calls, keys and time, which all primaries share.
func (c *Collector) scan(ctx context.Context, primaries []valkeygo.Client) (map[string]int, bool, error) {
	counts := map[string]int{}
	deadline := time.Now().Add(c.opt.ScanTimeout)
	calls := max(1, c.opt.ScanMaxKeys/int(c.opt.ScanCount))
	counted := 0
	for _, node := range primaries {
		var cursor uint64
		for {
			if calls == 0 || counted >= c.opt.ScanMaxKeys || !time.Now().Before(deadline) {
				return counts, true, nil
			}
			calls--
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(c.match).Count(c.opt.ScanCount).Build()).AsScanEntry()
			if err != nil {
				return nil, false, fmt.Errorf("valkeymetrics: scan: %w", err)
			}
			for _, k := range e.Elements {
				if counted == c.opt.ScanMaxKeys {
					return counts, true, nil
				}
				counted++
				counts[c.family(strings.TrimPrefix(k, c.opt.Prefix))]++
			}
			if e.Cursor == 0 {
				break
			}
			cursor = e.Cursor
		}
	}
	return counts, false, nil
}

// family names the family of key (without the prefix): the longest that it equals or
// continues with a colon.
func (c *Collector) family(key string) string {
	for _, f := range c.families {
		if strings.HasPrefix(key, f) && (len(key) == len(f) || key[len(f)] == ':') {
			return f
		}
	}
	return OtherFamily
}

// parseInfo reads INFO's "field:value" lines; section headers and blank lines are skipped.
func parseInfo(s string) map[string]string {
	fields := map[string]string{}
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	return fields
}

// globEscape escapes what SCAN's MATCH would read as a pattern, so the prefix is literal.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
