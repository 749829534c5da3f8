package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB).
const DefaultMaxRequestBytes = 3 * 1024 * 1024 / 2

// Config configures a Client. The zero value talks to http://localhost:2379.
type Config struct {
	// Endpoints are the members' client URLs, such as "http://127.0.0.1:2379",
	// "https://[::1]:2379" or "etcd-0.example:2379" (http assumed). Empty means
	// "http://localhost:2379". A URL may carry a path prefix when the gateway sits
	// behind a proxy that mounts it under one ("https://proxy/etcd").
	Endpoints []string

	// APIPath is the API prefix, such as "/v3" or "/v3beta". Empty means detect it
	// per endpoint from GET /version on first use: /v3alpha for etcd 3.2 and
	// older, /v3beta for 3.3, /v3 for 3.4 and newer.
	APIPath string

	// HTTPClient sends the requests. Nil means a client built for this library:
	// HTTP/1.1 keep-alive on plain-text endpoints (where HTTP/2 would reach etcd's
	// gRPC server, not the gateway), HTTP/2 over TLS, enough idle connections per
	// member for many concurrent callers, and no overall timeout (which would cut
	// watch streams). A caller-supplied client must not set Timeout for the same
	// reason; Close leaves its connections alone.
	HTTPClient *http.Client

	// TLS is used for https endpoints when HTTPClient is nil. Nil means the
	// system's roots and default settings.
	TLS *tls.Config

	// DialTimeout bounds establishing a connection. Zero means 5 seconds.
	DialTimeout time.Duration

	// RequestTimeout bounds each unary request (not watches) in addition to the
	// caller's context. Zero means the caller's context alone bounds it.
	RequestTimeout time.Duration

	// MaxRequestBytes is the server's --max-request-bytes. A request that would be
	// larger is refused with ErrRequestTooLarge before it is sent. Zero means
	// DefaultMaxRequestBytes; negative disables the check.
	MaxRequestBytes int

	// WatchRetry is the backoff between attempts to re-establish a broken watch
	// stream. Zero means 50 ms doubling up to 2 s.
	WatchRetry RetryPolicy

	// Logger receives the client's rare log lines (a watch resuming, an endpoint
	// failing). Nil means no logging.
	Logger *slog.Logger
}

// RetryPolicy is an exponential backoff: Initial, doubling up to Max. Zero fields
// take the documented defaults of the field that holds the policy.
type RetryPolicy struct {
	Initial time.Duration
	Max     time.Duration
}

// Client is a connection to an etcd cluster through its HTTP/JSON gateway. It is
// safe for concurrent use; create one and share it. The zero value is not usable:
// call New. Close it to stop its watches and release its connections.
type Client struct {
	hc          *http.Client
	ownHC       bool
	endpoints   []*endpoint
	current     atomic.Uint32 // index into endpoints of the member in use
	apiPath     string
	reqTimeout  time.Duration
	maxReqBytes int
	watchRetry  RetryPolicy
	log         *slog.Logger

	mu      sync.Mutex
	closed  bool
	watches map[*Watch]struct{}
}

type endpoint struct {
	base string // scheme://host[:port][/path], no trailing slash

	mu     sync.Mutex
	prefix string // detected API prefix, "" until detected
}

// New returns a Client for cfg. It does no I/O: the first call connects.
func New(cfg Config) (*Client, error) {
	c := &Client{
		apiPath:     strings.TrimRight(cfg.APIPath, "/"),
		reqTimeout:  cfg.RequestTimeout,
		maxReqBytes: cfg.MaxRequestBytes,
		watchRetry:  cfg.WatchRetry,
		log:         cfg.Logger,
		watches:     make(map[*Watch]struct{}),
	}
	if c.apiPath != "" && !strings.HasPrefix(c.apiPath, "/") {
		c.apiPath = "/" + c.apiPath
	}
	if c.maxReqBytes == 0 {
		c.maxReqBytes = DefaultMaxRequestBytes
	}
	if c.watchRetry.Initial <= 0 {
		c.watchRetry.Initial = 50 * time.Millisecond
	}
	if c.watchRetry.Max <= 0 {
		c.watchRetry.Max = 2 * time.Second
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	eps := cfg.Endpoints
	if len(eps) == 0 {
		eps = []string{"http://localhost:2379"}
	}
	for _, raw := range eps {
		base, err := parseEndpoint(raw)
		if err != nil {
			return nil, err
		}
		c.endpoints = append(c.endpoints, &endpoint{base: base})
	}
	if cfg.HTTPClient != nil {
		c.hc = cfg.HTTPClient
	} else {
		c.hc = &http.Client{Transport: newTransport(cfg)}
		c.ownHC = true
	}
	return c, nil
}

func parseEndpoint(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("gateway: empty endpoint")
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("gateway: endpoint %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("gateway: endpoint %q: scheme %q is not http or https", raw, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("gateway: endpoint %q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("gateway: endpoint %q: query, fragment and user info are not allowed", raw)
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// maxConnsPerMember is how many idle connections are kept per member. Go's default
// of 2 makes a client with many concurrent callers open and close a connection per
// request; etcd serves thousands of connections easily.
const maxConnsPerMember = 256

func newTransport(cfg Config) *http.Transport {
	dialTimeout := cfg.DialTimeout
	if dialTimeout == 0 {
		dialTimeout = 5 * time.Second
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		MaxIdleConns:          4 * maxConnsPerMember,
		MaxIdleConnsPerHost:   maxConnsPerMember,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
		// HTTP/2 only over TLS: on a plain-text port, h2c would reach etcd's
		// gRPC server instead of the gateway.
		ForceAttemptHTTP2: true,
	}
	if cfg.TLS != nil {
		t.TLSClientConfig = cfg.TLS.Clone()
	}
	return t
}

// Endpoints returns the base URLs the client talks to.
func (c *Client) Endpoints() []string {
	out := make([]string, len(c.endpoints))
	for i, ep := range c.endpoints {
		out[i] = ep.base
	}
	return out
}

// Close stops every watch the client started and waits for their goroutines, then
// releases idle connections. Calls made after Close fail with ErrClosed. Close is
// safe to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	ws := make([]*Watch, 0, len(c.watches))
	for w := range c.watches {
		ws = append(ws, w)
	}
	c.mu.Unlock()
	for _, w := range ws {
		w.Stop()
	}
	if c.ownHC {
		c.hc.CloseIdleConnections()
	}
	return nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// pick returns the endpoint to use now.
func (c *Client) pick() *endpoint {
	return c.endpoints[int(c.current.Load())%len(c.endpoints)]
}

// failed moves on to the next endpoint after ep could not be reached.
func (c *Client) failed(ep *endpoint, err error) {
	if len(c.endpoints) == 1 {
		return
	}
	for i, e := range c.endpoints {
		if e == ep {
			next := uint32((i + 1) % len(c.endpoints))
			if c.current.CompareAndSwap(uint32(i), next) {
				c.log.Warn("etcd endpoint failed; switching", "endpoint", ep.base, "next", c.endpoints[next].base, "err", err)
			}
			return
		}
	}
}

// Version is what GET /version reports.
type Version struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
	Storage string `json:"storage,omitempty"`
}

// Version asks the current member for its version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	if c.isClosed() {
		return Version{}, localError("version", ErrClosed, "")
	}
	return c.version(ctx, c.pick())
}

func (c *Client) version(ctx context.Context, ep *endpoint) (Version, error) {
	var v Version
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.base+"/version", nil)
	if err != nil {
		return v, &Error{Op: "version", Endpoint: ep.base, Err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return v, transportError("version", ep.base, err)
	}
	body, err := readBody(resp)
	if err != nil {
		return v, transportError("version", ep.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return v, replyError("version", ep.base, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Server == "" {
		return v, &Error{Op: "version", Endpoint: ep.base, Status: resp.StatusCode, Message: "unexpected reply: " + snippet(body), Err: err, kind: ErrMalformedResponse}
	}
	return v, nil
}

// APIPath returns the API prefix in use for the current member ("/v3"), detecting
// it first if Config.APIPath was empty.
func (c *Client) APIPath(ctx context.Context) (string, error) {
	return c.prefix(ctx, c.pick())
}

func (c *Client) prefix(ctx context.Context, ep *endpoint) (string, error) {
	if c.apiPath != "" {
		return c.apiPath, nil
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.prefix != "" {
		return ep.prefix, nil
	}
	v, err := c.version(ctx, ep)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status != 0 {
			// The member answered, but not with a version (a proxy that forwards
			// only the API, say): assume a current server.
			c.log.Warn("etcd /version unreadable; assuming /v3", "endpoint", ep.base, "err", err)
			ep.prefix = "/v3"
			return ep.prefix, nil
		}
		return "", err
	}
	ep.prefix = APIPathFor(v.Server)
	return ep.prefix, nil
}

// APIPathFor returns the gateway prefix a server of the given version serves:
// "/v3alpha" up to 3.2, "/v3beta" for 3.3, "/v3" from 3.4 on. It tolerates
// pre-release and build suffixes ("3.6.0-rc.1", "3.5.9+git") and falls back to
// "/v3" for anything it cannot read.
func APIPathFor(version string) string {
	major, minor, ok := parseVersion(version)
	switch {
	case !ok:
		return "/v3"
	case major < 3 || (major == 3 && minor <= 2):
		return "/v3alpha"
	case major == 3 && minor == 3:
		return "/v3beta"
	}
	return "/v3"
}

func parseVersion(v string) (major, minor int, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+ "); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return 0, 0, false
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(parts[0])
	minor, err2 = strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Do sends one unary gateway request: it POSTs req, encoded as JSON, to the API
// path (such as "/kv/range"), and decodes the reply into resp (which may be nil).
// It is the escape hatch for API calls this package does not wrap; the seed's
// post().
func (c *Client) Do(ctx context.Context, path string, req, resp any) error {
	op := strings.TrimPrefix(path, "/")
	body, err := json.Marshal(req)
	if err != nil {
		return &Error{Op: op, Message: "encode request", Err: err}
	}
	return c.post(ctx, op, body, resp)
}

// call encodes req, checks its size, and posts it.
func (c *Client) call(ctx context.Context, op string, size int, req, resp any) error {
	if c.maxReqBytes > 0 && size > c.maxReqBytes {
		return localError(op, ErrRequestTooLarge, fmt.Sprintf(
			"request of about %d bytes exceeds the server's limit of %d bytes (Config.MaxRequestBytes); not sent", size, c.maxReqBytes))
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(req); err != nil {
		return &Error{Op: op, Message: "encode request", Err: err}
	}
	return c.post(ctx, op, buf.Bytes(), resp)
}

// post sends body to op, with the client's request timeout.
func (c *Client) post(ctx context.Context, op string, body []byte, resp any) error {
	ctx, cancel, err := c.begin(ctx, op)
	if err != nil {
		return err
	}
	defer cancel()
	return c.onEndpoints(ctx, func(ep *endpoint) error { return c.postTo(ctx, ep, op, body, resp) })
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

// onEndpoints runs try against the current endpoint, and against the next ones
// while the request certainly did not reach a server (so that trying again cannot
// apply it twice).
func (c *Client) onEndpoints(ctx context.Context, try func(*endpoint) error) error {
	var err error
	for range c.endpoints {
		ep := c.pick()
		err = try(ep)
		if err == nil || !notSent(err) || ctx.Err() != nil {
			return err
		}
		c.failed(ep, err)
	}
	return err
}

func (c *Client) postTo(ctx context.Context, ep *endpoint, op string, body []byte, resp any) error {
	prefix, err := c.prefix(ctx, ep)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.base+prefix+"/"+op, bytes.NewReader(body))
	if err != nil {
		return &Error{Op: op, Endpoint: ep.base, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	hr, err := c.hc.Do(req)
	if err != nil {
		return transportError(op, ep.base, err)
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	_, err = buf.ReadFrom(hr.Body)
	hr.Body.Close()
	if err != nil {
		return transportError(op, ep.base, err)
	}
	if hr.StatusCode != http.StatusOK {
		return replyError(op, ep.base, hr.StatusCode, buf.Bytes())
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(buf.Bytes(), resp); err != nil {
		return &Error{Op: op, Endpoint: ep.base, Status: hr.StatusCode,
			Message: "undecodable reply " + snippet(buf.Bytes()), Err: err, kind: ErrMalformedResponse}
	}
	return nil
}

// notSent reports whether a request certainly did not reach a server: the
// connection was refused or could not be dialled, so retrying elsewhere cannot
// apply it twice.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// call sends a unary request and decodes its reply into a new T.
func call[T any](ctx context.Context, c *Client, op string, size int, req any) (*T, error) {
	resp := new(T)
	if err := c.call(ctx, op, size, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}
