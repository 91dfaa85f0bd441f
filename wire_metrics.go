package main

import (
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/motorpool/motorpool/api"
	"github.com/motorpool/motorpool/cachekeys"
	"github.com/motorpool/motorpool/storage/valkey"
	"github.com/motorpool/motorpool/storage/valkey/valkeymetrics"
)

// valkeyScrapeTimeout bounds reading Valkey's figures on a scrape of /metrics, well within
// Prometheus's default scrape timeout (10 s), so that a Valkey outage shows as
// motorpool_valkey_up 0 instead of a failed scrape.
const valkeyScrapeTimeout = 2 * time.Second

// keyFamilies are the families of every key the service keeps in Valkey: the cache's, the
// auth state's and the limiter's.
func keyFamilies() []string {
	return slices.Concat(cachekeys.Families, valkey.AuthFamilies, []string{api.RateLimitFamily})
}

// valkeyCollector reads c's server's figures and counts its keys under c's prefix by family.
func valkeyCollector(c *valkey.Client) prometheus.Collector {
	return valkeymetrics.New(c.Valkey(), valkeymetrics.Options{
		Prefix: c.KeyPrefix(), Families: keyFamilies(), Timeout: valkeyScrapeTimeout,
	})
}

// buildInfo is motorpool_build_info: always 1, its labels say what runs.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "motorpool_build_info",
		Help: "Always 1; the labels name the version (main.version), the Go version and the VCS revision (unknown when the binary was built without VCS stamping).",
		ConstLabels: prometheus.Labels{
			"version": version, "goversion": runtime.Version(), "revision": revision(),
		},
	})
	g.Set(1)
	return g
}

// revision is the VCS revision the binary was built from, as the go command stamps it.
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "unknown"
}
