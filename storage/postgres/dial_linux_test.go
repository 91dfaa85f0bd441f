package postgres_test

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/motorpool/motorpool/storage/postgres"
	"github.com/motorpool/motorpool/storage/postgres/pgtest"
)

// The pool's connections notice a dead server on their own: keepalives probe an idle one
// within the dead-peer timeout, and unacknowledged data is given up on after it.
func TestPoolConnectionsDetectDeadPeers(t *testing.T) {
	s, err := postgres.Open(t.Context(), postgres.Config{URL: pgtest.NewDatabase(t), DeadPeerTimeout: 12 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() }) // after PoolConn's release: Close waits for it
	tcp, ok := postgres.PoolConn(t, s).(*net.TCPConn)
	if !ok {
		t.Skip("the test server is not reached over TCP")
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	opts := map[string]struct{ level, opt, want int }{
		"SO_KEEPALIVE":     {unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		"TCP_KEEPIDLE":     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 6},         // seconds
		"TCP_KEEPINTVL":    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 2},        // seconds
		"TCP_KEEPCNT":      {unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 3},          //
		"TCP_USER_TIMEOUT": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 12000}, // milliseconds
	}
	for name, o := range opts {
		var got int
		var gerr error
		if err := raw.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), o.level, o.opt) }); err != nil || gerr != nil {
			t.Fatalf("%s: %v %v", name, err, gerr)
		}
		if got != o.want {
			t.Errorf("%s = %d, want %d", name, got, o.want)
		}
	}
}
