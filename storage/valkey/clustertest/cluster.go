package clustertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Primaries is the number of servers in a Cluster: the fewest a cluster accepts, and enough
// that keys of different hash tags land on different nodes.
const Primaries = 3

// ErrNoBinaries is Start's error when neither valkey-server/valkey-cli nor
// redis-server/redis-cli are on PATH.
var ErrNoBinaries = errors.New("neither valkey-server and valkey-cli nor redis-server and redis-cli are on PATH")

// Cluster is Primaries servers in cluster mode on free loopback ports, their slots spread by
// `--cluster create`, without persistence, in a temporary directory of its own.
type Cluster struct {
	dir   string
	nodes []*node
}

// node is one server of a Cluster.
type node struct {
	port, busPort int
	log           string
	cmd           *exec.Cmd
	exited        chan struct{} // closed when the process has exited and been reaped
}

func (n *node) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// Start starts a Cluster and waits until every node reports cluster_state:ok, giving up when
// ctx ends. The caller must Stop it.
func Start(ctx context.Context) (*Cluster, error) {
	server, cli, err := binaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "clustertest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	for range Primaries {
		n, err := c.startNode(ctx, server)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s --cluster create: %w\n%s", cli, err, out)
	}
	if err := c.awaitOK(ctx); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// Addrs are the nodes' host:port addresses, any of which seeds a client.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr()
	}
	return out
}

// Stop kills the servers (nothing of theirs is worth keeping), waits for them to exit and
// removes the directory.
func (c *Cluster) Stop() {
	for _, n := range c.nodes {
		_ = n.cmd.Process.Kill()
	}
	for _, n := range c.nodes {
		<-n.exited
	}
	c.nodes = nil
	_ = os.RemoveAll(c.dir)
}

// binaries finds the server and the cli on PATH, Valkey's first.
func binaries() (server, cli string, err error) {
	for _, pair := range [][2]string{{"valkey-server", "valkey-cli"}, {"redis-server", "redis-cli"}} {
		s, serr := exec.LookPath(pair[0])
		c, cerr := exec.LookPath(pair[1])
		if serr == nil && cerr == nil {
			return s, c, nil
		}
	}
	return "", "", ErrNoBinaries
}

// startNode starts one server on free ports and waits until it answers PING. A port found
// free can be taken by another process before the server binds it (the packages' tests run
// at once); the server then exits at start, and another pair of ports is tried.
func (c *Cluster) startNode(ctx context.Context, server string) (*node, error) {
	var err error
	for range 5 {
		var n *node
		if n, err = c.tryNode(ctx, server); err == nil {
			return n, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func (c *Cluster) tryNode(ctx context.Context, server string) (*node, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	n := &node{port: ports[0], busPort: ports[1], exited: make(chan struct{})}
	p := strconv.Itoa(n.port)
	n.log = filepath.Join(c.dir, "node-"+p+".log")
	n.cmd = exec.Command(server,
		"--port", p, "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(n.busPort),
		"--cluster-config-file", filepath.Join(c.dir, "nodes-"+p+".conf"),
		"--save", "", "--appendonly", "no", "--dir", c.dir, "--logfile", n.log)
	// Should the test binary die without stopping the cluster (a test timeout's panic), the
	// servers die with it instead of holding their ports.
	n.cmd.SysProcAttr = procAttr()
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", server, err)
	}
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		reply, err := command(pctx, n.addr(), "PING")
		cancel()
		if err == nil && reply == "PONG" {
			return n, nil
		}
		select {
		case <-n.exited:
			return nil, fmt.Errorf("%s on port %s exited at start:\n%s", server, p, tail(n.log))
		case <-ctx.Done():
			_ = n.cmd.Process.Kill()
			<-n.exited
			return nil, fmt.Errorf("%s on port %s did not answer: %v\n%s", server, p, err, tail(n.log))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freePorts returns k distinct loopback ports that were free a moment ago: all are held until
// all are found, so none is returned twice.
func freePorts(k int) ([]int, error) {
	var ports []int
	for range k {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// awaitOK waits until every node reports cluster_state:ok and knows every other: until then a
// client could be handed a slot map with holes, or a node could answer CLUSTERDOWN.
func (c *Cluster) awaitOK(ctx context.Context) error {
	want := "cluster_known_nodes:" + strconv.Itoa(len(c.nodes))
	for {
		var notOK error
		for _, n := range c.nodes {
			info, err := command(ctx, n.addr(), "CLUSTER", "INFO")
			if err == nil && (!strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, want)) {
				err = fmt.Errorf("CLUSTER INFO of %s:\n%s", n.addr(), info)
			}
			if err != nil {
				notOK = err
				break
			}
		}
		if notOK == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the cluster did not come up: %w", notOK)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// command sends one command to addr on a connection of its own and returns its reply: a
// simple string, an integer or a bulk string, as text; a server error is an error. Enough
// RESP for bringing up a cluster, before any client may be pointed at it.
func command(ctx context.Context, addr string, args ...string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var req strings.Builder
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, req.String()); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		size, err := strconv.Atoi(line[1:])
		if err != nil || size < 0 {
			return "", fmt.Errorf("unexpected reply %q", line)
		}
		buf := make([]byte, size+2) // and the CRLF
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:size]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// tail is the end of a server's log, for an error message.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
