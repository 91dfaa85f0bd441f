package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/motorpool/motorpool/storage"
)

// translate maps a driver error to the storage error contract; anything unexpected is wrapped
// with the operation's name. SQLite names the failed unique index only in the message
// ("UNIQUE constraint failed: users.email_normalized"), so the field is read from there.
// A database locked past the busy timeout, and a call its deadline interrupted (the driver
// interrupts SQLite when ctx ends, also while it waits for a lock), are ErrUnavailable.
func translate(op string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: sqlite: %s: %w", storage.ErrUnavailable, op, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary code, for the busy and locked variants
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_INTERRUPT:
			return fmt.Errorf("%w: sqlite: %s: %w", storage.ErrUnavailable, op, err)
		}
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			switch msg := se.Error(); {
			case strings.Contains(msg, "users.email_normalized"):
				return &storage.FieldError{Err: storage.ErrConflict, Field: "email"}
			case strings.Contains(msg, "vehicles.vin"):
				return &storage.FieldError{Err: storage.ErrConflict, Field: "vin"}
			}
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			// SQLite does not say which key failed; vehicles.user_id is the only one.
			return &storage.FieldError{Err: storage.ErrReference, Field: "userId"}
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}
