package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"time"
)

// requestState travels with each request so that inner layers can tell the access log and
// the metrics which route matched and why a request failed, without logging twice.
//
// It is the request's context too (the one observe puts on the request), and holds the
// response recorder and the values of the headers every answer carries: one allocation for
// what would otherwise be five on every request.
type requestState struct {
	context.Context
	rec     statusRecorder
	headers [2]string // X-Request-Id, X-Content-Type-Options

	id string
	// pattern is the mux pattern the request took ("/" for none); route is the same for
	// logs and metrics, empty when nothing matched. Both are set by onRoute.
	pattern string
	route   string
	// op is the contract's operation the request is for, nil for none (HEAD takes GET's).
	op  *operation
	err error // the cause of a 5xx
}

type stateKey struct{}

// Value answers stateKey with the state itself, and every other key from the parent.
func (s *requestState) Value(key any) any {
	if key == (stateKey{}) {
		return s
	}
	return s.Context.Value(key)
}

// stateOf returns the request's state; a request that did not pass through the outer
// middleware (a unit test calling a handler directly) gets a throwaway one.
func stateOf(r *http.Request) *requestState {
	if s, ok := r.Context().Value(stateKey{}).(*requestState); ok {
		return s
	}
	return &requestState{Context: r.Context()}
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// validRequestID accepts a caller's X-Request-Id only if it is short and plain, so it cannot
// forge log lines.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe is the outermost layer: it assigns the request id, recovers panics into a 500,
// and writes one log line and the metrics for every request.
func observe(log *slog.Logger, m *metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			st := &requestState{Context: r.Context(), id: r.Header.Get("X-Request-Id")}
			if !validRequestID(st.id) {
				st.id = newRequestID()
			}
			// Set by hand, with the state's backing array: Header.Set allocates a slice each.
			st.headers = [2]string{st.id, "nosniff"} // nosniff on every answer, not only errors
			h := w.Header()
			h["X-Request-Id"], h["X-Content-Type-Options"] = st.headers[0:1:1], st.headers[1:2:2]
			st.rec.ResponseWriter = w
			rec := &st.rec
			r = r.WithContext(st)

			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					st.err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
					if rec.status == 0 {
						writeProblem(rec, newProblem(http.StatusInternalServerError,
							"The server failed to handle the request; it has been logged with the request id."))
					}
				}
				status := rec.status
				if status == 0 { // the handler wrote nothing: net/http sends 200
					status = http.StatusOK
				}
				elapsed := time.Since(start)
				route := st.route
				if route == "" {
					route = "unmatched"
				}
				path := routeOf(route) // the pattern's path: the method is a label of its own
				if path == "" {
					path = route
				}
				m.observe(r.Method, path, status, elapsed)
				attrs := []slog.Attr{
					slog.String("request_id", st.id),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.String("route", route),
					slog.Int("status", status),
					slog.Int64("bytes", rec.bytes),
					slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
					slog.String("remote", r.RemoteAddr),
				}
				level := slog.LevelInfo
				if status >= 500 {
					// A 503 is a dependency away, which operators watch for but which is no
					// bug: WARN. Every other 5xx is one: ERROR.
					level = slog.LevelError
					if status == http.StatusServiceUnavailable {
						level = slog.LevelWarn
					}
					if st.err != nil {
						attrs = append(attrs, slog.String("error", st.err.Error()))
					}
				}
				log.LogAttrs(r.Context(), level, "request", attrs...)
			}()
			next.ServeHTTP(rec, r)
		})
	}
}

// limitBody answers 413 for a body over max bytes and 415 for a body that is not JSON, before
// any handler sees it, and buffers the body for the validator. Every operation with a body in
// the contract takes application/json, and bodies are small, so reading it whole here costs
// nothing extra.
func limitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hasBody := r.ContentLength > 0 || r.ContentLength == -1 && len(r.TransferEncoding) > 0
			if !hasBody {
				next.ServeHTTP(w, r)
				return
			}
			if r.ContentLength > max {
				writeProblem(w, newProblem(http.StatusRequestEntityTooLarge,
					fmt.Sprintf("The request body is larger than %d bytes.", max)))
				return
			}
			if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
				mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
				if err != nil || mt != "application/json" {
					writeProblem(w, newProblem(http.StatusUnsupportedMediaType,
						"The request body must be application/json.",
						problemField("Content-Type", "must be application/json")))
					return
				}
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
			switch {
			case tooLarge(err):
				writeProblem(w, newProblem(http.StatusRequestEntityTooLarge,
					fmt.Sprintf("The request body is larger than %d bytes.", max)))
				return
			case err != nil:
				writeProblem(w, newProblem(http.StatusBadRequest, "The request body could not be read.",
					problemField("body", "was cut short")))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			next.ServeHTTP(w, r)
		})
	}
}

// tooLarge reports whether err comes from reading past limitBody's limit.
func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
