package sqlite

import "testing"

// Pragmas reads journal_mode and foreign_keys from every connection the store's pool can open
// at once, failing t if the connections disagree.
func Pragmas(t testing.TB, s *Store) (journalMode string, foreignKeys int) {
	t.Helper()
	ctx := t.Context()
	n := s.db.Stats().MaxOpenConnections
	for i := range n {
		// Holding the earlier connections forces the pool to hand out a different one.
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		defer conn.Close()
		var mode string
		var fk int
		if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatalf("journal_mode: %v", err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatalf("foreign_keys: %v", err)
		}
		if i > 0 && (mode != journalMode || fk != foreignKeys) {
			t.Fatalf("connection %d: journal_mode %q foreign_keys %d, connection 0: %q %d", i, mode, fk, journalMode, foreignKeys)
		}
		journalMode, foreignKeys = mode, fk
	}
	return journalMode, foreignKeys
}
