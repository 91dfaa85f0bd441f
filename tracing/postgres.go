package tracing

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Postgres is a pgx.QueryTracer (postgres.Config.Tracer): a client span for each statement
// (Query, QueryRow, Exec; a transaction's BEGIN and COMMIT too) made within a traced context,
// named after the sqlc query it runs ("GetUser") or else the statement's first word. The
// statement's text is an attribute; its arguments are not (they hold emails and password
// hashes).
type Postgres struct{ tp trace.TracerProvider }

var _ pgx.QueryTracer = (*Postgres)(nil)

// NewPostgres returns a statement tracer on tp; on the global provider when tp is nil.
func NewPostgres(tp trace.TracerProvider) *Postgres { return &Postgres{tp: tp} }

// pgSpan keys the span TraceQueryStart started in the context it hands TraceQueryEnd: a
// statement outside a span has none, and the caller's own span must not be ended.
type pgSpan struct{}

// TraceQueryStart implements pgx.QueryTracer.
func (p *Postgres) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !traced(ctx) {
		return ctx
	}
	summary := querySummary(data.SQL)
	attrs := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		semconv.DBSystemNamePostgreSQL, semconv.DBQuerySummary(summary), semconv.DBQueryText(data.SQL))}
	if conn != nil {
		cc := conn.Config()
		attrs = append(attrs, trace.WithAttributes(semconv.DBNamespace(cc.Database),
			semconv.ServerAddress(cc.Host), semconv.ServerPort(int(cc.Port))))
	}
	_, span := tracer(p.tp).Start(ctx, summary, attrs...)
	return context.WithValue(ctx, pgSpan{}, span)
}

// TraceQueryEnd implements pgx.QueryTracer.
func (p *Postgres) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	span, ok := ctx.Value(pgSpan{}).(trace.Span)
	if !ok {
		return
	}
	if err := data.Err; err != nil {
		var pg *pgconn.PgError
		if errors.As(err, &pg) {
			span.SetAttributes(semconv.DBResponseStatusCode(pg.Code))
		}
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// querySummary is the name of sqlc's query (its text starts "-- name: GetUser :one"), or the
// statement's first word in capitals ("BEGIN", "SELECT").
func querySummary(sql string) string {
	if rest, ok := strings.CutPrefix(sql, "-- name: "); ok {
		if name, _, ok := strings.Cut(rest, " "); ok && name != "" {
			return name
		}
	}
	for _, line := range strings.Split(sql, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "--") {
			word, _, _ := strings.Cut(line, " ")
			return strings.ToUpper(strings.TrimRight(word, ";"))
		}
	}
	return "SQL"
}
