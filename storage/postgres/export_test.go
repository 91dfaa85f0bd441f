package postgres

import (
	"net"
	"testing"
)

// PoolConn returns the socket under one of the pool's connections, for tests of its options.
func PoolConn(t testing.TB, s *Store) net.Conn {
	t.Helper()
	c, err := s.pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	return c.Conn().PgConn().Conn()
}

// Translate is translate, for the table test of its classification.
var Translate = translate
