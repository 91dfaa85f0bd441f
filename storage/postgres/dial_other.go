//go:build !linux

package postgres

import (
	"syscall"
	"time"
)

// userTimeout is Linux's alone; elsewhere keepalives are what notice a dead peer.
func userTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
