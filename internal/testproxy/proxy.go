// Package testproxy is a TCP relay that tests put in front of a server (PostgreSQL, RabbitMQ)
// to cut, hold and restore the connection without touching the shared server.
package testproxy

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP relay in front of a server, for outage tests that must not touch the shared
// server: Hold stops forwarding bytes while keeping every connection open (a network
// partition: packets held, not refused), Refuse closes every connection and refuses new ones
// (a server gone), Restore ends either. It is safe for concurrent use.
type Proxy struct {
	target, addr string

	mu     sync.Mutex
	moved  *sync.Cond // broadcast when held or closed changes
	held   bool
	ln     net.Listener // nil while refusing
	conns  map[net.Conn]struct{}
	closed bool
}

// New relays a free port on 127.0.0.1 to target (host:port) until tb ends.
func New(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	p.moved = sync.NewCond(&p.mu)
	go p.accept(ln)
	tb.Cleanup(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.Refuse()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// Hold stops forwarding in both directions; connections stay open and new ones are accepted,
// their bytes held too. What was held is delivered on Restore, as TCP would after a partition.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = true
	p.moved.Broadcast()
}

// Refuse closes the listener and every relayed connection, so clients see their connections
// reset and new ones refused.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = false
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.moved.Broadcast()
}

// Restore forwards again, listening again on the same address after Refuse.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = false
	p.moved.Broadcast()
	if p.ln != nil || p.closed {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.ln = ln
	go p.accept(ln)
	return nil
}

func (p *Proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.relay(c)
	}
}

func (p *Proxy) relay(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // refused meanwhile
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client); done <- struct{}{} }()
	go func() { p.pipe(client, server); done <- struct{}{} }()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
	_ = client.Close()
	_ = server.Close()
}

// pipe copies src to dst, holding each chunk while the proxy is held.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.held && !p.closed {
				p.moved.Wait()
			}
			p.mu.Unlock()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil { // io.EOF included: the peer closed
			return
		}
	}
}
