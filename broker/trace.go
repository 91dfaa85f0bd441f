package broker

import (
	"context"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// The spans of publishing and consuming follow OpenTelemetry's messaging conventions, on the
// global tracer provider and propagator: with tracing off (none installed) they record nothing
// and no header is added to a message.

const scope = "github.com/motorpool/motorpool/broker"

// tracer is looked up at each use, so that a provider installed later is the one used.
func tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(scope) }

// headers is an AMQP header table as a propagation carrier.
type headers amqp.Table

func (h headers) Get(key string) string {
	v, _ := h[key].(string)
	return v
}

func (h headers) Set(key, value string) { h[key] = value }

func (h headers) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// startPublish starts m's producer span, a child of the trace context m carries (its event's
// request) or else of ctx, and returns the headers that carry the span to the consumers (nil
// when there is nothing to carry).
func startPublish(ctx context.Context, exchange string, m Message) (trace.Span, amqp.Table) {
	prop := otel.GetTextMapPropagator()
	if len(m.Headers) > 0 {
		ctx = prop.Extract(ctx, propagation.MapCarrier(m.Headers))
	}
	ctx, span := tracer().Start(ctx, "publish "+exchange, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(semconv.MessagingSystemRabbitMQ, semconv.MessagingOperationTypeSend,
			semconv.MessagingOperationName("publish"), semconv.MessagingDestinationName(exchange),
			semconv.MessagingRabbitMQDestinationRoutingKey(m.RoutingKey), semconv.MessagingMessageID(m.ID),
			semconv.MessagingMessageBodySize(len(m.Body)))
	}
	h := headers{}
	prop.Inject(ctx, h)
	if len(h) == 0 {
		return span, nil
	}
	return span, amqp.Table(h)
}

// endSpans ends the spans of one publish, failed with err when it is not nil.
func endSpans(spans []trace.Span, err error) {
	for _, s := range spans {
		if err != nil {
			s.RecordError(err)
			s.SetStatus(codes.Error, err.Error())
		}
		s.End()
	}
}

// traceHeaders are the headers of t the global propagator reads, for Message.Headers; nil
// when it reads none (tracing off) or t has none of them.
func traceHeaders(t amqp.Table) map[string]string {
	var out map[string]string
	for _, k := range otel.GetTextMapPropagator().Fields() {
		if v, ok := t[k].(string); ok {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// Process runs h on d within a consumer span, "process <queue>", the child of the trace
// context d carries (Message.Headers): the span of its publish, or of the request whose write
// recorded the event. system is messaging.system ("rabbitmq"), or "" for none (in process).
// Consume calls it for every delivery; an in-process relay should too.
func Process(ctx context.Context, system, queue string, d Delivery, h Handler) error {
	if len(d.Headers) > 0 {
		ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(d.Headers))
	}
	ctx, span := tracer().Start(ctx, "process "+queue, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(semconv.MessagingOperationTypeProcess, semconv.MessagingOperationName("process"),
			semconv.MessagingDestinationSubscriptionName(queue), semconv.MessagingMessageID(d.ID),
			semconv.MessagingRabbitMQDestinationRoutingKey(d.RoutingKey))
		if system != "" {
			span.SetAttributes(semconv.MessagingSystemKey.String(system))
		}
	}
	err := h(ctx, d)
	endSpans([]trace.Span{span}, err)
	return err
}
