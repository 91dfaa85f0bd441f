package main

import (
	"strings"

	"github.com/motorpool/motorpool/tracing"
)

// tracingSettings are OpenTelemetry tracing's rows of the table of settings (see settings):
// the standard OTEL_* variables, read as the OpenTelemetry environment specification says.
var tracingSettings = []setting{
	{name: "OTEL_EXPORTER_OTLP_ENDPOINT", secret: secretInURL,
		reader:  otlpEndpoint(func(c *config) *string { return &c.Tracing.Endpoint }),
		meaning: "the OpenTelemetry collector's OTLP/HTTP base URL, such as `http://localhost:4318`: set, requests, PostgreSQL statements, Valkey calls and events are traced and the spans sent to its `/v1/traces` as protobuf ([Tracing](#tracing)); unset, with `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` unset too, tracing is off and costs nothing"},
	{name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", secret: secretInURL, shown: "`OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`",
		reader:  otlpEndpoint(func(c *config) *string { return &c.Tracing.TracesEndpoint }),
		meaning: "the traces URL itself, used as it is (a path is not appended); set, it turns tracing on too"},
	{name: "OTEL_SERVICE_NAME", def: "motorpool", meaning: "the spans' `service.name`",
		reader: text(func(c *config) *string { return &c.Tracing.ServiceName })},
	{name: "OTEL_TRACES_SAMPLER", def: "parentbased_always_on",
		reader:  oneOf(func(c *config) *string { return &c.Tracing.Sampler }, "must be one of "+strings.Join(tracing.Samplers, ", "), tracing.Samplers...),
		meaning: "which traces are kept, by OpenTelemetry's names: `parentbased_always_on` all, but a request's whose `traceparent` says the caller kept none; `parentbased_traceidratio` the same, and of new traces the share `OTEL_TRACES_SAMPLER_ARG`; `parentbased_always_off` only those callers kept; `always_on`, `always_off` and `traceidratio` ignore the caller"},
	{name: "OTEL_TRACES_SAMPLER_ARG", def: "1", reader: samplerRatio,
		meaning: "the share of traces the `traceidratio` samplers keep, from 0 to 1"},
}
