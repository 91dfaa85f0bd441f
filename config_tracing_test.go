package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The OTEL_* rows: off unless an endpoint is set; the base endpoint gets the traces path, the
// traces endpoint is taken as it is; the sampler and its ratio are OpenTelemetry's names.
func TestLoadConfigTracing(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want tracingConfig
		url  string
	}{
		{"off", nil, tracingConfig{ServiceName: "motorpool", Sampler: "parentbased_always_on", SamplerArg: 1}, ""},
		{"base endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			tracingConfig{Endpoint: "http://collector:4318", ServiceName: "motorpool", Sampler: "parentbased_always_on", SamplerArg: 1},
			"http://collector:4318/v1/traces"},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otel.example.com/traces",
			"OTEL_SERVICE_NAME": "motorpool-eu", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
			tracingConfig{Endpoint: "http://collector:4318", TracesEndpoint: "https://otel.example.com/traces", ServiceName: "motorpool-eu",
				Sampler: "parentbased_traceidratio", SamplerArg: 0.25},
			"https://otel.example.com/traces"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string { return c.env[k] }, false)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, cfg.Tracing, cmp.AllowUnexported(tracingConfig{})); diff != "" {
				t.Errorf("tracing config (-want +got):\n%s", diff)
			}
			if got := cfg.Tracing.url(); got != c.url || cfg.Tracing.on() != (c.url != "") {
				t.Errorf("url() = %q, on() = %v; want %q", got, cfg.Tracing.on(), c.url)
			}
			if want := "off"; c.url == "" && cfg.describeTracing() != want {
				t.Errorf("describeTracing() = %q, want %q", cfg.describeTracing(), want)
			}
			if d := cfg.Tracing.sampler().Description(); c.want.SamplerArg != 1 && !strings.Contains(d, "0.25") {
				t.Errorf("sampler %s: want the ratio 0.25", d)
			}
		})
	}
	for name, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "collector:4318",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "grpc://collector:4317",
		"OTEL_TRACES_SAMPLER":                "jaeger_remote",
		"OTEL_TRACES_SAMPLER_ARG":            "1.5",
	} {
		_, err := loadConfig(func(k string) string { return map[string]string{name: v}[k] }, false)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v, want one naming the variable", name, v, err)
		}
	}
}
