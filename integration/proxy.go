package integration

import (
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of one member, for network faults
// between a client and that member: cut every connection, delay traffic, or
// blackhole it (connections stay open and nothing passes, as in a partition). Its
// methods are safe for concurrent use.
type Proxy struct {
	ln     net.Listener
	target string // host:port
	scheme string

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	delay     time.Duration
	blackhole bool
	healed    chan struct{} // closed when the blackhole ends
	cuts      int
	closed    bool
	wg        sync.WaitGroup
}

// NewProxy starts a proxy on a free port of 127.0.0.1 that forwards to target, a
// URL (http://127.0.0.1:2379) or host:port. Close stops it.
func NewProxy(target string) (*Proxy, error) {
	scheme, hostport := "http", target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		scheme, hostport = u.Scheme, u.Host
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("integration: proxy: %w", err)
	}
	p := &Proxy{ln: ln, target: hostport, scheme: scheme, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// URL is the proxy's address as a URL with the target's scheme.
func (p *Proxy) URL() string { return p.scheme + "://" + p.ln.Addr().String() }

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection through the proxy at once, in both directions.
// New connections are accepted as before.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	p.cuts++
}

// Delay holds every chunk of data for d before passing it on, in both directions.
// Zero ends the delay.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Blackhole stops all traffic: connections stay open (and new ones are accepted)
// but no byte passes until Heal. Nothing is lost: what was held passes after Heal,
// as TCP would deliver it after a partition ends.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.blackhole {
		p.blackhole = true
		p.healed = make(chan struct{})
	}
}

// Heal ends a blackhole and a delay.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = 0
	if p.blackhole {
		p.blackhole = false
		close(p.healed)
	}
}

// Cuts is how many times Cut was called.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Close stops the proxy: it closes the listener and every connection, and waits
// for its goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.blackhole {
		p.blackhole = false
		close(p.healed)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.Cut()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track records c so that Cut and Close can reach it; false once closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	if !p.pass() {
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return // the client sees its connection closed, as with a refused dial
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.copy(server, client)
	}()
	p.copy(client, server)
	<-done
}

// copy forwards src to dst through the proxy's faults, then closes both.
func (p *Proxy) copy(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: close both sides
		}
	}
}

// pass waits out the current delay and blackhole; false when the proxy closed.
func (p *Proxy) pass() bool {
	p.mu.Lock()
	d, hole, healed, closed := p.delay, p.blackhole, p.healed, p.closed
	p.mu.Unlock()
	if closed {
		return false
	}
	if hole {
		<-healed
	}
	if d > 0 {
		time.Sleep(d)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closed
}
