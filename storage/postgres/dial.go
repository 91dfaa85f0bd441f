package postgres

import (
	"net"
	"time"
)

// defaultDeadPeerTimeout is Config.DeadPeerTimeout when zero.
const defaultDeadPeerTimeout = 15 * time.Second

// dialer opens the pool's connections so that a peer that stops answering (a partition, a
// host gone without closing its sockets) is noticed within deadPeer even when no call is
// waiting on it: TCP keepalives probe an idle connection, and TCP_USER_TIMEOUT (on Linux)
// drops one whose sent data stays unacknowledged. Calls themselves are bounded by their
// context (DB_QUERY_TIMEOUT); this is what keeps a dead connection from lingering in the pool.
func dialer(deadPeer time.Duration) *net.Dialer {
	return &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     deadPeer / 2,
			Interval: deadPeer / 6,
			Count:    3, // Idle + Count×Interval = deadPeer
		},
		Control: userTimeout(deadPeer),
	}
}
