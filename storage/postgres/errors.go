package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/motorpool/motorpool/storage"
)

// translate maps a driver error to the storage error contract; anything unexpected is wrapped
// with the operation's name.
func translate(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.ErrNotFound
	}
	if unavailable(err) {
		return fmt.Errorf("%w: postgres: %s: %w", storage.ErrUnavailable, op, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			switch pe.ConstraintName {
			case "users_email_normalized_key":
				return &storage.FieldError{Err: storage.ErrConflict, Field: "email"}
			case "vehicles_vin_key":
				return &storage.FieldError{Err: storage.ErrConflict, Field: "vin"}
			}
		case "23503": // foreign_key_violation
			if pe.ConstraintName == "vehicles_user_id_fkey" {
				return &storage.FieldError{Err: storage.ErrReference, Field: "userId"}
			}
		}
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// unavailable reports whether err says the server could not answer, rather than that it
// refused this statement: a failed connection attempt (whatever the reason, a wrong password
// included: no request can fix it), a timeout or passed deadline, a connection lost or closed
// under the call, and the SQLSTATEs of connection exceptions (class 08), a server shutting
// down or starting (57P01-57P03) and a full server (53300).
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	var ne net.Error
	return pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, net.ErrClosed)
}
