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
