package relay

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/motorpool/motorpool/broker"
)

// Metrics is the events' Prometheus metrics: the outbox's backlog and age (read when scraped),
// the relay's publishes and failures, and each consumer's deliveries, redeliveries, failures,
// dead letters and lag. It is an Observer and a broker.Observer.
type Metrics struct {
	relayed, relayErrs prometheus.Counter
	delivered          *prometheus.CounterVec
	lag                *prometheus.HistogramVec
	disconnects        *prometheus.CounterVec
	backlog            prometheus.Collector
}

var (
	_ Observer        = (*Metrics)(nil)
	_ broker.Observer = (*Metrics)(nil)
)

// NewMetrics returns the metrics; backlog is read at each scrape, within a second.
func NewMetrics(backlog func(ctx context.Context) (int, time.Time, error)) *Metrics {
	return &Metrics{
		relayed: prometheus.NewCounter(prometheus.CounterOpts{Name: "motorpool_relay_published_total",
			Help: "Events the relay published and removed from the outbox."}),
		relayErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "motorpool_relay_errors_total",
			Help: "Relay attempts that failed (the events stayed in the outbox)."}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "motorpool_consumer_deliveries_total",
			Help: "Deliveries to this process's consumers, by queue and outcome: ok, redelivered_ok, failed (handed back), dead (dead-lettered in process)."},
			[]string{"queue", "outcome"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "motorpool_consumer_lag_seconds",
			Help:    "Time from an event's commit to its delivery, by queue.",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"queue"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "motorpool_consumer_disconnects_total",
			Help: "Times a consumer lost its broker connection, by queue."}, []string{"queue"}),
		backlog: backlogCollector(backlog),
	}
}

// Relayed implements Observer.
func (m *Metrics) Relayed(n int) { m.relayed.Add(float64(n)) }

// RelayFailed implements Observer.
func (m *Metrics) RelayFailed(error) { m.relayErrs.Inc() }

// Delivered implements broker.Observer.
func (m *Metrics) Delivered(queue string, d broker.Delivery, lag time.Duration, err error) {
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "failed"
	case d.Redelivered:
		outcome = "redelivered_ok"
	}
	m.delivered.WithLabelValues(queue, outcome).Inc()
	if lag > 0 {
		m.lag.WithLabelValues(queue).Observe(lag.Seconds())
	}
}

// Disconnected implements broker.Observer.
func (m *Metrics) Disconnected(queue string, _ error) { m.disconnects.WithLabelValues(queue).Inc() }

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.relayed, m.relayErrs, m.delivered, m.lag, m.disconnects, m.backlog}
}

// backlogCollector reports the outbox's backlog: how many events wait, and the age of the
// oldest (0 when none). A failed read reports nothing rather than a wrong zero.
type backlogCollector func(ctx context.Context) (int, time.Time, error)

var (
	backlogDesc = prometheus.NewDesc("motorpool_outbox_backlog", "Events waiting in the outbox.", nil, nil)
	ageDesc     = prometheus.NewDesc("motorpool_outbox_oldest_age_seconds", "Age of the oldest event waiting in the outbox (0 when none).", nil, nil)
)

func (b backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc; ch <- ageDesc }

func (b backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, oldest, err := b(ctx)
	if err != nil {
		return
	}
	age := 0.0
	if n > 0 && !oldest.IsZero() {
		age = max(0, time.Since(oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, age)
}
