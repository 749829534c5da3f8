package gateway

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"testing"
)

// TestBodyCopyUsesPooledBuffer: net/http writes a request body of known length
// by handing the connection a LimitedReader; through the client's dialer that
// copy takes a pooled buffer, where a bare TCP connection allocates 32 KB for
// every request.
func TestBodyCopyUsesPooledBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	defer func() { <-drained }()
	defer ln.Close()

	tr := newTransport(Config{}, nil)
	defer tr.CloseIdleConnections()
	c, err := tr.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rf, ok := c.(io.ReaderFrom)
	if !ok {
		t.Fatalf("the dialer's connection %T has no ReadFrom", c)
	}

	body := bytes.Repeat([]byte("v"), 40<<10) // a coalesced batch's size
	br := bytes.NewReader(body)
	lr := &io.LimitedReader{R: br}
	write := func() {
		br.Reset(body)
		lr.N = int64(len(body))
		if n, err := rf.ReadFrom(lr); err != nil || n != int64(len(body)) {
			t.Fatalf("ReadFrom wrote %d of %d bytes: %v", n, len(body), err)
		}
	}
	write() // the pool's first buffer
	const runs = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		write()
	}
	runtime.ReadMemStats(&after)
	// Under the race detector sync.Pool drops a quarter of what it is given, so
	// the bound is half the 32 KB a bare connection allocates every time.
	if perWrite := (after.TotalAlloc - before.TotalAlloc) / runs; perWrite > 16<<10 {
		t.Fatalf("a body's copy allocated %d bytes; want a pooled buffer", perWrite)
	}
}
