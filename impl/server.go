// Package impl implements gen.StrictServerInterface on a storage.Store: it turns requests the
// API layer has already validated against openapi.yaml into store calls, and store results
// and errors into the contract's typed responses. It knows no HTTP routing and no SQL.
package impl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/motorpool/motorpool/gen"
	"github.com/motorpool/motorpool/storage"
)

// PasswordHasher turns a password into the encoded hash the store keeps.
type PasswordHasher interface {
	Hash(ctx context.Context, plain string) (string, error)
}

// Owners tells which users vehicles may belong to: the vehicles domain's view of the users
// (storage.UserProjection), which, in the two-database layout, is all the vehicles domain has.
type Owners interface {
	KnownUser(ctx context.Context, id int64) (bool, error)
}

// Check is one backend that readiness depends on.
type Check struct {
	Name string                          // as reported in /readyz, e.g. "database"
	Ping func(ctx context.Context) error // nil error when the backend answers
}

// Server implements gen.StrictServerInterface.
type Server struct {
	store        storage.Store
	owners       Owners
	hasher       PasswordHasher
	auth         Authenticator
	jwks         func() ([]byte, error)
	checks       []Check
	checkTimeout time.Duration
	log          *slog.Logger
	now          func() time.Time
}

// Deps are what a Server works on.
type Deps struct {
	Store  storage.Store
	Owners Owners         // for the vehicles domain's operations
	Hasher PasswordHasher // for the users domain's operations; nil in a process that does not serve them
	Auth   Authenticator
	JWKS   func() ([]byte, error) // the public key set, as JSON
}

var _ gen.StrictServerInterface = (*Server)(nil)

// Option configures a Server.
type Option func(*Server)

// WithChecks sets the backends /readyz checks, each bounded by timeout.
func WithChecks(timeout time.Duration, checks ...Check) Option {
	return func(s *Server) { s.checks, s.checkTimeout = checks, timeout }
}

// WithLogger sets where the server logs what it does not tell clients (why a readiness
// check failed); discarded by default.
func WithLogger(log *slog.Logger) Option {
	return func(s *Server) { s.log = log }
}

// New returns a Server. Readiness checks the store unless WithChecks says otherwise.
func New(d Deps, opts ...Option) *Server {
	s := &Server{
		store:        d.Store,
		owners:       d.Owners,
		hasher:       d.Hasher,
		auth:         d.Auth,
		jwks:         d.JWKS,
		checks:       []Check{{Name: "database", Ping: d.Store.Ping}},
		checkTimeout: 2 * time.Second,
		log:          slog.New(slog.DiscardHandler),
		now:          time.Now,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Default page size, as the contract's `limit` parameter declares.
const defaultLimit = 20

func pageSize(limit *gen.Limit) int {
	if limit == nil {
		return defaultLimit
	}
	return int(*limit)
}

func problem(status int, detail string, fields ...gen.FieldError) gen.Problem {
	p := gen.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status}
	if detail != "" {
		p.Detail = &detail
	}
	if n := len(fields); n > 0 {
		p.Errors, p.ErrorCount = &fields, &n
	}
	return p
}

func badRequest(field, message string) gen.Problem {
	return problem(http.StatusBadRequest, "The request does not match the API contract.",
		gen.FieldError{Field: field, Message: message})
}

func notFound(kind string, id int64) gen.Problem {
	return problem(http.StatusNotFound, fmt.Sprintf("There is no %s with id %d.", kind, id))
}

// fieldProblem maps a store error that names a field (ErrConflict, ErrReference) to its
// problem; ok is false for any other error, which the caller returns as a 500.
func fieldProblem(err error) (p gen.Problem, ok bool) {
	var fe *storage.FieldError
	if !errors.As(err, &fe) {
		return gen.Problem{}, false
	}
	switch {
	case errors.Is(fe, storage.ErrConflict):
		return problem(http.StatusConflict, fmt.Sprintf("That %s is already in use.", fe.Field),
			gen.FieldError{Field: fe.Field, Message: "is already in use"}), true
	case errors.Is(fe, storage.ErrReference):
		return problem(http.StatusUnprocessableEntity, fmt.Sprintf("The %s refers to nothing that exists.", fe.Field),
			gen.FieldError{Field: fe.Field, Message: "does not exist"}), true
	}
	return gen.Problem{}, false
}
