package api

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/motorpool/motorpool/storage"
)

// Metrics is the service's Prometheus registry: HTTP, cache, database pool and Go runtime.
type Metrics = metrics

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	cache    *prometheus.CounterVec
	handler  http.Handler
	reg      *prometheus.Registry

	hits, lookups atomic.Int64 // for the hit ratio

	// series caches the request series by method, route and status (all few: the methods
	// and routes of the table and the statuses the service answers).
	seriesMu sync.RWMutex
	series   map[seriesKey]requestSeries
}

// NewMetrics registers the HTTP metrics, the cache's, the Go runtime's and the database pool's
// on a registry of their own, so that several handlers (tests) never collide. pool may be nil.
func NewMetrics(pool func() storage.PoolStats) *Metrics { return newMetrics(pool) }

func newMetrics(pool func() storage.PoolStats) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg:    reg,
		series: map[seriesKey]requestSeries{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "motorpool_http_requests_total",
			Help: "HTTP requests served, by method, route (the path pattern, or unmatched) and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "motorpool_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by method, route (the path pattern, or unmatched) and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "code"}),
	}
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "motorpool_cache_events_total",
		Help: "Cache events by key family: hit_local, hit_remote, miss, fill, stale_set (a fill an invalidation overtook, not stored), invalidate, error, breaker_open, breaker_close, evict.",
	}, []string{"family", "event"})
	ratio := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "motorpool_cache_hit_ratio",
		Help: "Share of cache lookups answered from the cache (either tier) since start.",
	}, func() float64 {
		if n := m.lookups.Load(); n > 0 {
			return float64(m.hits.Load()) / float64(n)
		}
		return 0
	})
	reg.MustRegister(m.requests, m.latency, m.cache, ratio,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		reg.MustRegister(poolCollector(pool))
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// Register adds collectors of other parts of the service (the events' relay and consumers).
func (m *metrics) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// cacheEventNames are the event label values of motorpool_cache_events_total.
var cacheEventNames = map[storage.CacheEvent]string{
	storage.CacheHitLocal: "hit_local", storage.CacheHitRemote: "hit_remote", storage.CacheMiss: "miss",
	storage.CacheFill: "fill", storage.CacheStaleSet: "stale_set", storage.CacheInvalidate: "invalidate",
	storage.CacheError: "error", storage.CacheBreakerOpen: "breaker_open", storage.CacheBreakerClose: "breaker_close",
	storage.CacheEvict: "evict",
}

// ObserveCache counts a cache event (it implements storage.CacheObserver).
func (m *metrics) ObserveCache(ev storage.CacheEvent, key string, _ error) {
	name, ok := cacheEventNames[ev]
	if !ok {
		return
	}
	switch ev {
	case storage.CacheHitLocal, storage.CacheHitRemote:
		m.hits.Add(1)
		m.lookups.Add(1)
	case storage.CacheMiss:
		m.lookups.Add(1)
	}
	m.cache.WithLabelValues(cacheFamily(key), name).Inc()
}

// cacheFamily names the key family of a cache key (the part before its ids), bounding the
// label's values: user, user:email, users:all, vehicle, vehicles:all, vehicles:user.
func cacheFamily(key string) string {
	for _, f := range []string{"users:all", "vehicles:all", "vehicles:user", "user:email", "user", "vehicle"} {
		if i := strings.Index(key, f+":"); i >= 0 || strings.HasSuffix(key, f) {
			return f
		}
	}
	return "other"
}

// observe counts a request. method is the request's; route is the path pattern of the route
// it took (the route table's patterns are "METHOD /path"), or unmatched.
func (m *metrics) observe(method, route string, status int, d time.Duration) {
	o := m.observers(metricMethod(method), route, status)
	o.requests.Inc()
	o.latency.Observe(d.Seconds())
}

// metricMethod bounds the method label: a method outside the standard ones (anyone can send
// any token) is OTHER.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// seriesKey names one pair of request series.
type seriesKey struct {
	method, route string
	status        int
}

type requestSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// observers returns the series of a method, route and status, resolved once: WithLabelValues
// on every request formats the status, hashes the labels and allocates their slice.
func (m *metrics) observers(method, route string, status int) requestSeries {
	k := seriesKey{method, route, status}
	m.seriesMu.RLock()
	o, ok := m.series[k]
	m.seriesMu.RUnlock()
	if ok {
		return o
	}
	s := strconv.Itoa(status)
	o = requestSeries{m.requests.WithLabelValues(method, route, s), m.latency.WithLabelValues(method, route, s)}
	m.seriesMu.Lock()
	m.series[k] = o
	m.seriesMu.Unlock()
	return o
}

var (
	poolMax     = prometheus.NewDesc("motorpool_db_pool_max_connections", "Most connections the database pool opens.", nil, nil)
	poolOpen    = prometheus.NewDesc("motorpool_db_pool_open_connections", "Database connections open now.", nil, nil)
	poolInUse   = prometheus.NewDesc("motorpool_db_pool_in_use_connections", "Database connections lent out now.", nil, nil)
	poolIdle    = prometheus.NewDesc("motorpool_db_pool_idle_connections", "Idle database connections.", nil, nil)
	poolWaits   = prometheus.NewDesc("motorpool_db_pool_waits_total", "Connection acquisitions that had to wait.", nil, nil)
	poolWaitSec = prometheus.NewDesc("motorpool_db_pool_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
)

// poolCollector reads the pool's figures at scrape time.
type poolCollector func() storage.PoolStats

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolMax, poolOpen, poolInUse, poolIdle, poolWaits, poolWaitSec} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns))
	ch <- prometheus.MustNewConstMetric(poolOpen, prometheus.GaugeValue, float64(s.OpenConns))
	ch <- prometheus.MustNewConstMetric(poolInUse, prometheus.GaugeValue, float64(s.InUse))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.Idle))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.WaitCount))
	ch <- prometheus.MustNewConstMetric(poolWaitSec, prometheus.CounterValue, s.WaitDuration.Seconds())
}
