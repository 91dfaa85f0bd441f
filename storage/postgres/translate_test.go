package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/motorpool/motorpool/storage"
	"github.com/motorpool/motorpool/storage/postgres"
)

// translate tells a server that could not answer (ErrUnavailable, 503) from one that refused
// the statement (a contract error, or a bug: 500). The outage tests reach most of these
// causes for real; the server-side codes are hard to provoke on demand.
func TestTranslateUnavailable(t *testing.T) {
	for _, tt := range []struct {
		err         error
		unavailable bool
	}{
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pgconn.PgError{Code: "57P02", Message: "crash shutdown"}, true},
		{&pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{&pgconn.PgError{Code: "08006", Message: "connection failure"}, true},
		{&pgconn.PgError{Code: "53300", Message: "too many connections"}, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("write: %w", &net.OpError{Op: "write", Err: errors.New("broken pipe")}), true},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("acquire: %w", pgconn.ErrConnClosed), true},
		{&pgconn.PgError{Code: "23505", ConstraintName: "other_key"}, false},
		{&pgconn.PgError{Code: "42P01", Message: "relation does not exist"}, false},
		{context.Canceled, false}, // the client went away; no one waits for the answer
		{errors.New("something else"), false},
	} {
		got := errors.Is(postgres.Translate("op", tt.err), storage.ErrUnavailable)
		if got != tt.unavailable {
			t.Errorf("translate(%v) unavailable = %v, want %v", tt.err, got, tt.unavailable)
		}
	}
}
