package testenv

import (
	"bytes"
	"encoding/binary"
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
	// frozen: open connections stay open but nothing is forwarded (a
	// server that stopped answering mid-conversation); thaw is closed when
	// it ends.
	frozen bool
	thaw   chan struct{}
	// held counts the reads that found the proxy frozen.
	held int
	// accepted counts the connections clients opened, served or not.
	accepted int
	// mongo: the client's messages are read as MongoDB wire messages, so
	// that FailOn can drop the connection that sends a given command.
	mongo    bool
	failOn   map[string]int // command name -> how many more to let through before the cut
	freezeOn map[string]bool
	seen     map[string]int // command name -> messages seen
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

// NewMongoProxy is NewProxy for a MongoDB-wire server: it also reads the
// client's messages, for FailOn and Seen.
func NewMongoProxy(t testing.TB, target string) *Proxy {
	p := NewProxy(t, target)
	p.mu.Lock()
	p.mongo, p.failOn, p.freezeOn, p.seen = true, map[string]int{}, map[string]bool{}, map[string]int{}
	p.mu.Unlock()
	return p
}

// FailOn makes the connection that sends the (skip+1)-th next command named
// cmd ("insert", "update", "findAndModify"...) close before the command
// reaches the server: the caller sees a network error, and the server
// never saw the command. Only on a proxy from NewMongoProxy.
func (p *Proxy) FailOn(cmd string, skip int) {
	p.mu.Lock()
	p.failOn[cmd] = skip
	p.mu.Unlock()
}

// FreezeOn freezes the proxy (see Freeze) when the next command named cmd
// arrives, before it reaches the server: a server that stops answering at
// exactly that point. Only on a proxy from NewMongoProxy.
func (p *Proxy) FreezeOn(cmd string) {
	p.mu.Lock()
	p.freezeOn[cmd] = true
	p.mu.Unlock()
}

// Seen reports how many commands named cmd reached the proxy (including
// one FailOn cut).
func (p *Proxy) Seen(cmd string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[cmd]
}

// Accepted reports how many connections clients have opened to the proxy
// (including refused ones): a test can wait until a client is trying.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() { p.setMode(modeCut) }

// Stall keeps connections open but forwards nothing until Restore (a server
// that stopped answering); open connections are closed.
func (p *Proxy) Stall() { p.setMode(modeStall) }

// Freeze keeps every connection open, new ones too, but forwards nothing
// until Restore: a server that stopped answering, as a client on a pooled
// connection sees it.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	if !p.frozen {
		p.frozen, p.thaw = true, make(chan struct{})
	}
	p.mu.Unlock()
}

// Restore forwards again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.mode = modeUp
	if p.frozen {
		p.frozen = false
		close(p.thaw)
	}
	p.mu.Unlock()
}

// Held reports how many times data reached the proxy while it was frozen,
// to be held until Restore: a test can wait until a client has sent what
// a freeze is to hold, rather than sleep and hope it has.
func (p *Proxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// wait blocks while the proxy is frozen.
func (p *Proxy) wait() {
	p.mu.Lock()
	frozen, thaw := p.frozen, p.thaw
	if frozen {
		p.held++
	}
	p.mu.Unlock()
	if frozen {
		<-thaw
	}
}

// copyData forwards src to dst, holding data while the proxy is frozen.
func (p *Proxy) copyData(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Close stops the proxy.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.Restore() // release frozen copies
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
		p.accepted++
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
	go func() {
		if p.mongo {
			p.copyMongo(up, c)
		} else {
			p.copyData(up, c)
		}
		done <- struct{}{}
	}()
	go func() { p.copyData(c, up); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = up.Close()
}

// copyMongo forwards MongoDB wire messages from src to dst, one whole
// message at a time, and stops (which closes both ends) at a message that
// FailOn names.
func (p *Proxy) copyMongo(dst io.Writer, src io.Reader) {
	var header [4]byte
	for {
		if _, err := io.ReadFull(src, header[:]); err != nil {
			return
		}
		n := int(binary.LittleEndian.Uint32(header[:]))
		if n < 4 || n > 64<<20 {
			return
		}
		msg := make([]byte, n)
		copy(msg, header[:])
		if _, err := io.ReadFull(src, msg[4:]); err != nil {
			return
		}
		if name := commandName(msg); name != "" {
			p.mu.Lock()
			p.seen[name]++
			skip, armed := p.failOn[name]
			if armed {
				if skip == 0 {
					delete(p.failOn, name)
				} else {
					p.failOn[name] = skip - 1
				}
			}
			if p.freezeOn[name] {
				// Frozen under the lock that counts the command: a test
				// that has seen it counted finds the proxy frozen.
				delete(p.freezeOn, name)
				if !p.frozen {
					p.frozen, p.thaw = true, make(chan struct{})
				}
			}
			p.mu.Unlock()
			if armed && skip == 0 {
				return
			}
		}
		p.wait()
		if _, err := dst.Write(msg); err != nil {
			return
		}
	}
}

// commandName is the first key of an OP_MSG's body (section kind 0), which
// is the command's name; "" for anything else.
func commandName(msg []byte) string {
	const opMsg = 2013
	if len(msg) < 16+4+1+4+1 || binary.LittleEndian.Uint32(msg[12:16]) != opMsg {
		return ""
	}
	body := msg[20:]
	if body[0] != 0 { // section kind 0: the body document
		return ""
	}
	doc := body[1+4:] // skip kind and the document's length
	name := doc[1:]   // skip the first element's type
	if i := bytes.IndexByte(name, 0); i > 0 {
		return string(name[:i])
	}
	return ""
}
