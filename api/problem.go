package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/motorpool/motorpool/auth"
	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/storage"
)

// maxFieldErrors is how many field errors a problem lists; errorCount says how many there were.
const maxFieldErrors = 20

// newProblem builds an RFC 9457 problem; type is about:blank, so the status says what kind.
func newProblem(status int, detail string, fields ...gen.FieldError) gen.Problem {
	p := gen.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status}
	if detail != "" {
		p.Detail = &detail
	}
	if n := len(fields); n > 0 {
		// A body can hold tens of thousands of faults; the first few say what to fix.
		fields = fields[:min(n, maxFieldErrors)]
		p.Errors, p.ErrorCount = &fields, &n
	}
	return p
}

// retryUnavailable is the Retry-After of a 503 for a backend away: no better time is known, and
// a client retrying sooner than the database's call deadline mostly adds to the queue.
const retryUnavailable = "5"

// writeUnavailable answers 503 for a backend away (the database, the session store, the
// limiter's store), always with Retry-After, so that every client backs off alike.
func writeUnavailable(w http.ResponseWriter, detail string) {
	w.Header().Set("Retry-After", retryUnavailable)
	writeProblem(w, newProblem(http.StatusServiceUnavailable, detail))
}

// writeProblem sends p as application/problem+json.
func writeProblem(w http.ResponseWriter, p gen.Problem) {
	body, err := json.Marshal(p)
	if err != nil { // a gen.Problem always marshals; keep the status regardless
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}

// internalError answers 500 without the cause, which is kept for the access log instead; a
// cause that is an unreachable backend (the session store, the database) gets 503, so clients
// retry. This is the one place a dependency's absence becomes a status.
func internalError(w http.ResponseWriter, r *http.Request, cause error) {
	stateOf(r).err = cause
	detail := ""
	switch {
	case errors.Is(cause, auth.ErrUnavailable):
		detail = "The session store does not answer; try again shortly."
	case errors.Is(cause, storage.ErrUnavailable):
		detail = "The database does not answer; try again shortly."
	}
	if detail != "" {
		writeUnavailable(w, detail)
		return
	}
	writeProblem(w, newProblem(http.StatusInternalServerError,
		"The server failed to handle the request; it has been logged with the request id."))
}
