package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/motorpool/motorpool/storage"
)

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	handler  http.Handler
}

// newMetrics registers the HTTP metrics, the Go runtime's and the database pool's on a
// registry of their own, so that several handlers (tests) never collide.
func newMetrics(pool func() storage.PoolStats) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "motorpool_http_requests_total",
			Help: "HTTP requests served, by route and status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "motorpool_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route and status.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "status"}),
	}
	reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		reg.MustRegister(poolCollector(pool))
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	s := strconv.Itoa(status)
	m.requests.WithLabelValues(route, s).Inc()
	m.latency.WithLabelValues(route, s).Observe(d.Seconds())
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
