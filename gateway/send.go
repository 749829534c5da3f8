package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// A unary call goes down these steps, each in its own function:
//
//	call[T]  typed reply for a wrapped API call
//	unary    size check, JSON encoding
//	post     closed client, Config.RequestTimeout, then onEndpoints (retry.go)
//	postTo   one attempt on one member (with the auth token, auth.go)
//	send     the HTTP request; a non-200 reply becomes a *Error (decode.go)
//
// Streams (watch.go, the lease keepalive) share onEndpoints and send.

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Do sends one unary gateway request: it POSTs req, encoded as JSON, to the API
// path (such as "/kv/range"), and decodes the reply into resp (which may be nil).
// It is the escape hatch for API calls this package does not wrap (etcd3gw's
// post()).
//
// Do knows nothing of the call it sends, so it takes the cautious side twice:
// it treats every call as one that may change state (a request whose reply is
// lost is not sent again, and the error matches ErrOutcomeUnknown; send a read
// again yourself), and it leaves the size check to the server
// (Config.MaxRequestBytes bounds the protobuf the server decodes, which only the
// server can measure from JSON of unknown shape). It sends req as it is: a
// namespace view (WithNamespace) does not translate its keys.
func (c *Client) Do(ctx context.Context, path string, req, resp any) error {
	op := strings.TrimPrefix(path, "/")
	body, err := json.Marshal(req)
	if err != nil {
		return &Error{Op: op, Message: "encode request", Err: err}
	}
	return c.post(ctx, rpc{path: op}, body, resp)
}

// unary checks a request's size (estimated by the caller), encodes it and posts
// it.
func (c *Client) unary(ctx context.Context, r rpc, size int, req, resp any) error {
	if err := c.checkSize(r, size); err != nil {
		return err
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(req); err != nil {
		return &Error{Op: r.path, Message: "encode request", Err: err}
	}
	return c.post(ctx, r, buf.Bytes(), resp)
}

// checkSize refuses a request whose estimated size is over the server's limit.
func (c *Client) checkSize(r rpc, size int) error {
	if c.maxReqBytes > 0 && size > c.maxReqBytes {
		return localError(r.path, ErrRequestTooLarge, fmt.Sprintf(
			"request of about %d bytes exceeds the server's limit of %d bytes (Config.MaxRequestBytes); not sent", size, c.maxReqBytes))
	}
	return nil
}

// postBuilt is unary for the hot path's requests (encode.go): build appends the
// body to a pooled buffer.
func (c *Client) postBuilt(ctx context.Context, r rpc, size int, build func([]byte) []byte, resp any) error {
	if err := c.checkSize(r, size); err != nil {
		return err
	}
	bp := bodyPool.Get().(*[]byte)
	b := build((*bp)[:0])
	err := c.post(ctx, r, b, resp)
	if cap(b) <= 1<<20 { // a huge body's buffer is left to the collector
		*bp = b[:0]
		bodyPool.Put(bp)
	}
	return err
}

// post sends body to r's path, with the client's request timeout.
func (c *Client) post(ctx context.Context, r rpc, body []byte, resp any) error {
	ctx, cancel, err := c.begin(ctx, r.path)
	if err != nil {
		return err
	}
	defer cancel()
	return c.onEndpoints(ctx, r, func(ep *endpoint) error {
		return c.withAuth(ctx, func(token string) error { return c.postTo(ctx, ep, r.path, body, resp, token) })
	})
}

// begin checks that the client is open and applies Config.RequestTimeout to a
// unary call's context.
func (c *Client) begin(ctx context.Context, op string) (context.Context, context.CancelFunc, error) {
	if c.isClosed() {
		return nil, nil, localError(op, ErrClosed, "")
	}
	if c.reqTimeout > 0 {
		ctx, cancel := context.WithTimeout(ctx, c.reqTimeout)
		return ctx, cancel, nil
	}
	return ctx, func() {}, nil
}

func (c *Client) postTo(ctx context.Context, ep *endpoint, op string, body []byte, resp any, token string) error {
	hr, err := c.send(ctx, ep, op, body, nil, token)
	if err != nil {
		return err
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	_, err = buf.ReadFrom(c.bounded(hr.Body))
	hr.Body.Close()
	if err != nil {
		return c.readError(op, ep.base, err)
	}
	if resp == nil {
		return nil
	}
	if err := decodeReply(buf.Bytes(), resp); err != nil {
		return &Error{Op: op, Endpoint: ep.base, Status: hr.StatusCode,
			Message: "undecodable reply " + snippet(buf.Bytes()), Err: err, kind: ErrMalformedResponse}
	}
	return nil
}

// send posts body to op on ep and returns the reply if its status is 200; any
// other status is read and returned as a *Error.
func (c *Client) send(ctx context.Context, ep *endpoint, op string, body []byte, header http.Header, token string) (*http.Response, error) {
	return c.sendFrom(ctx, ep, op, bytes.NewReader(body), header, token)
}

// sendFrom is send with the body read from r, which a stream may keep open.
func (c *Client) sendFrom(ctx context.Context, ep *endpoint, op string, r io.Reader, header http.Header, token string) (*http.Response, error) {
	prefix, err := c.prefix(ctx, ep)
	if err != nil {
		return nil, unsentError(op, ep.base, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.base+prefix+"/"+op, r)
	if err != nil {
		return nil, &Error{Op: op, Endpoint: ep.base, Err: err, stage: stageNotSent}
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		// etcd's gateway takes the raw token, without a "Bearer" scheme.
		req.Header.Set("Authorization", token)
	}
	hr, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(op, ep.base, err)
	}
	ep.sawProto(hr.ProtoMajor)
	if hr.StatusCode != http.StatusOK {
		b, rerr := io.ReadAll(io.LimitReader(hr.Body, 64<<10))
		closeBody(hr)
		if rerr != nil {
			return nil, transportError(op, ep.base, rerr)
		}
		return nil, replyError(op, ep.base, hr.StatusCode, b)
	}
	return hr, nil
}

func (c *Client) readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(c.bounded(resp.Body))
}

// bounded limits r to Config.MaxReplyBytes: reading past it fails with
// errTooLarge.
func (c *Client) bounded(r io.Reader) io.Reader {
	if c.maxReply < 0 {
		return r
	}
	return &meter{r: r, max: c.maxReply}
}

// errTooLarge is what a meter returns past its bound.
var errTooLarge = errors.New("reply larger than Config.MaxReplyBytes")

// meter is a reader that fails once more than max bytes have been read since
// the last reset.
type meter struct {
	r    io.Reader
	n    int64
	max  int64
	over bool
}

func (m *meter) Read(p []byte) (int, error) {
	if m.over {
		return 0, errTooLarge
	}
	if left := m.max - m.n + 1; int64(len(p)) > left {
		p = p[:left] // read one byte past the bound, to tell "exactly max" from "more"
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	if m.n > m.max {
		m.over = true
		return 0, errTooLarge
	}
	return n, err
}

// reset starts counting anew (a stream's next message).
func (m *meter) reset() { m.n = 0 }

// readError is the error of a reply that could not be read whole: too large, or
// the connection broke.
func (c *Client) readError(op, endpoint string, err error) *Error {
	if errors.Is(err, errTooLarge) {
		return &Error{Op: op, Endpoint: endpoint, kind: ErrReplyTooLarge,
			Message: fmt.Sprintf("reply larger than %d bytes (Config.MaxReplyBytes); not read", c.maxReply)}
	}
	return transportError(op, endpoint, err)
}

// call sends a unary request and decodes its reply into a new T.
func call[T any](ctx context.Context, c *Client, r rpc, size int, req any) (*T, error) {
	resp := new(T)
	if err := c.unary(ctx, r, size, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with this package's own request structs
	}
	return b
}
