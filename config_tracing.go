package main

import (
	"strconv"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/motorpool/motorpool/tracing"
)

// tracingConfig is OpenTelemetry tracing's part of the configuration, read from the standard
// OTEL_* variables with the OpenTelemetry environment specification's meaning.
type tracingConfig struct {
	Endpoint       string  // OTEL_EXPORTER_OTLP_ENDPOINT: the collector's base URL
	TracesEndpoint string  // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the traces URL itself
	ServiceName    string  // OTEL_SERVICE_NAME
	Sampler        string  // OTEL_TRACES_SAMPLER, one of tracing.Samplers
	SamplerArg     float64 // OTEL_TRACES_SAMPLER_ARG: the traceidratio samplers' ratio
}

// url is where spans go; "" when tracing is off.
func (t tracingConfig) url() string { return tracing.TracesURL(t.Endpoint, t.TracesEndpoint) }

// on reports whether tracing is configured.
func (t tracingConfig) on() bool { return t.url() != "" }

// sampler is the sampler the configuration names (its values were checked as they were read).
func (t tracingConfig) sampler() sdktrace.Sampler {
	s, err := tracing.Sampler(t.Sampler, t.SamplerArg)
	if err != nil {
		return sdktrace.ParentBased(sdktrace.AlwaysSample()) // the default: unreachable after loadConfig
	}
	return s
}

// otlpEndpoint reads an OTLP/HTTP endpoint URL into the field f gives.
func otlpEndpoint(f func(*config) *string) reader {
	return reader{
		parse: func(c *config, v string) error {
			if err := tracing.CheckEndpoint(v); err != nil {
				return err
			}
			*f(c) = v
			return nil
		},
		show: func(c *config) string { return *f(c) },
	}
}

// samplerRatio reads OTEL_TRACES_SAMPLER_ARG.
var samplerRatio = reader{
	parse: func(c *config, v string) error {
		r, err := tracing.ParseRatio(v)
		if err != nil {
			return err
		}
		c.Tracing.SamplerArg = r
		return nil
	},
	show: func(c *config) string { return strconv.FormatFloat(c.Tracing.SamplerArg, 'g', -1, 64) },
}

// describeTracing is tracing's part of the start-up line.
func (c config) describeTracing() string {
	if !c.Tracing.on() {
		return "off"
	}
	return "otlp/http " + maskURL(c.Tracing.url()) + ", service " + c.Tracing.ServiceName + ", sampler " + c.Tracing.Sampler
}
