package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a target and can cut them: tests put it
// between the runtime and a server to make the server unreachable (Cut),
// unresponsive (Stall) or reachable again (Restore) in the middle of a run.
type Proxy struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	mode   proxyMode
	conns  map[net.Conn]struct{}
}

type proxyMode int

const (
	modeUp proxyMode = iota
	modeCut
	modeStall
)

// NewProxy listens on a free loopback port and forwards to target. It is
// closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() { p.setMode(modeCut) }

// Stall keeps connections open but forwards nothing until Restore (a server
// that stopped answering); open connections are closed.
func (p *Proxy) Stall() { p.setMode(modeStall) }

// Restore forwards again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.mode = modeUp
	p.mu.Unlock()
}

// Close stops the proxy.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.setMode(modeCut)
}

func (p *Proxy) setMode(m proxyMode) {
	p.mu.Lock()
	p.mode = m
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode != modeUp {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		switch mode {
		case modeCut:
			_ = c.Close()
			continue
		case modeStall:
			// Hold the connection open, read and drop everything.
			p.mu.Lock()
			p.conns[c] = struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
			continue
		}
		go p.pipe(c)
	}
}

func (p *Proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c) || !p.track(up) {
		_ = c.Close()
		_ = up.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = up.Close()
}
