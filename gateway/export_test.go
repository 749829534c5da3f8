package gateway

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
)

// CountDials makes c's own transport count the connections it opens.
func CountDials(c *Client, n *atomic.Int64) {
	t := c.hc.Transport.(*http.Transport)
	dial := t.DialContext
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.Add(1)
		return dial(ctx, network, addr)
	}
}

// ObserveResponses calls f with every HTTP response c's own transport receives.
func ObserveResponses(c *Client, f func(*http.Response)) {
	next := c.hc.Transport
	c.hc.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if err == nil {
			f(resp)
		}
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// AuthState returns c's current token and how many times it authenticated.
func AuthState(c *Client) (token string, authentications uint64) {
	c.auth.mu.Lock()
	defer c.auth.mu.Unlock()
	return c.auth.token, c.auth.gen
}

// WatchEndpoint returns the member w's current stream is on.
func WatchEndpoint(w *Watch) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.endpoint
}

// PendingOps returns how many calls wait in c's coalescers for a batch.
func PendingOps(c *Client) int {
	n := 0
	for _, q := range []*coalescer{c.batches, c.serialBatches} {
		q.mu.Lock()
		n += len(q.pending)
		q.mu.Unlock()
	}
	return n
}

// SharedStreams returns how many shared watch streams c runs for Await.
func SharedStreams(c *Client) int {
	h := c.hub()
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

// InFlight returns how many requests the coalescer of c that a Get with opts
// goes through has on the wire, or is about to send.
func InFlight(c *Client, opts ...Option) int {
	q := c.batches
	if o := OpGet("k", opts...); o.serializable {
		q = c.serialBatches
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inFlight
}
