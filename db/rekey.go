package db

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
)

// RekeyEmailsVersion is the migration that re-keys users.email_normalized. It is Go, not SQL,
// on both engines: neither has Unicode case folding.
const RekeyEmailsVersion = 3

// RekeyEmails recomputes every user's email_normalized with normalize, so that rows keyed under
// an older normalization (lower-casing, before full case folding) are found again under the
// current one. The bind func writes the engine's n-th placeholder.
//
// Two rows that the new normalization makes equal (xς@… and xΣ@… used to be two accounts)
// cannot share a key: the one already holding it (else the first in id order) gets it and the
// other keeps its old key, so nothing is merged or lost; it stays reachable by id, not by
// email, and is logged (by id) for an operator to resolve. Rows are retried while any moves,
// as one may free the key another needs.
func RekeyEmails(normalize func(string) string, bind func(n int) string) func(ctx context.Context, tx *sql.Tx) error {
	update := fmt.Sprintf(`UPDATE users SET email_normalized = %[1]s
WHERE id = %[2]s AND NOT EXISTS (SELECT 1 FROM users WHERE email_normalized = %[1]s)`, bind(1), bind(2))
	return func(ctx context.Context, tx *sql.Tx) error {
		pending, err := staleKeys(ctx, tx, normalize)
		if err != nil {
			return err
		}
		for moved := true; moved && len(pending) > 0; {
			moved = false
			left := pending[:0]
			for _, r := range pending {
				res, err := tx.ExecContext(ctx, update, r.key, r.id)
				if err != nil {
					return fmt.Errorf("rekey user %d: %w", r.id, err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return fmt.Errorf("rekey user %d: %w", r.id, err)
				} else if n == 0 {
					left = append(left, r)
					continue
				}
				moved = true
			}
			pending = left
		}
		for _, r := range pending {
			slog.Warn("migration: a user's email equals another's under full case folding; it keeps its old key and cannot sign in by email until one of the two changes",
				"user_id", r.id)
		}
		return nil
	}
}

type rekey struct {
	id  int64
	key string
}

// staleKeys lists the users whose stored key is not normalize(email), in id order.
func staleKeys(ctx context.Context, tx *sql.Tx, normalize func(string) string) ([]rekey, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, email, email_normalized FROM users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("rekey: %w", err)
	}
	defer rows.Close()
	var out []rekey
	for rows.Next() {
		var (
			id         int64
			email, key string
		)
		if err := rows.Scan(&id, &email, &key); err != nil {
			return nil, fmt.Errorf("rekey: %w", err)
		}
		if k := normalize(email); k != key {
			out = append(out, rekey{id, k})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rekey: %w", err)
	}
	return out, nil
}
