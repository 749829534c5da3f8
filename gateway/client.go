package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cenkalti/backoff/v4"
	"time"
)

// DefaultMaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB).
const DefaultMaxRequestBytes = 3 * 1024 * 1024 / 2

// Config configures a Client. The zero value talks to http://localhost:2379.
type Config struct {
	// Endpoints are the members' client URLs, such as "http://127.0.0.1:2379",
	// "https://[::1]:2379" or "etcd-0.example:2379" (http assumed). Empty means
	// "http://localhost:2379". A URL may carry a path prefix when the gateway sits
	// behind a proxy that mounts it under one ("https://proxy/etcd"). Requests are
	// spread over the endpoints round-robin, skipping members that just failed.
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
	// reason; Close leaves its connections alone, and the TLS fields below do not
	// apply to it.
	HTTPClient *http.Client

	// TLS is the base TLS configuration for https endpoints. Nil means the
	// system's roots and Go's defaults (TLS 1.2 at least).
	TLS *tls.Config
	// CAFile is a PEM bundle of the certificate authorities that sign the
	// members' certificates. Empty means TLS.RootCAs, or the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for members
	// that require client certificates (--client-cert-auth). Both or neither.
	CertFile, KeyFile string
	// ServerName overrides the name the members' certificates are checked
	// against. Empty means the endpoint's host.
	ServerName string

	// Username and Password authenticate the client when the cluster has auth
	// enabled. The client gets a token on first use, sends it with every request
	// and stream, and gets a new one when the server says it expired. Neither
	// appears in errors or logs. Empty Username means no authentication.
	Username, Password string

	// DialTimeout bounds establishing a connection. Zero means 5 seconds.
	DialTimeout time.Duration

	// RequestTimeout bounds each unary request (not watches) in addition to the
	// caller's context, including its retries. Zero means the caller's context
	// alone bounds it.
	RequestTimeout time.Duration

	// RetryTimeout is how long a call keeps trying when no member can serve it
	// (all unreachable, or without a leader), passing over the endpoints again
	// after a backoff. Zero means 5 seconds; negative means a single pass. The
	// caller's context bounds it too.
	RetryTimeout time.Duration

	// Retry is the backoff between passes over the endpoints and between
	// attempts to re-establish a broken watch. Zero fields mean 50 ms doubling
	// up to 2 s.
	Retry RetryPolicy

	// MaxRequestBytes is the server's --max-request-bytes. A request that would be
	// larger is refused with ErrRequestTooLarge before it is sent. Zero means
	// DefaultMaxRequestBytes; negative disables the check.
	MaxRequestBytes int

	// SyncInterval, if positive, makes the client refresh its endpoints from the
	// cluster's member list at that interval (see Sync).
	SyncInterval time.Duration

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

func (p RetryPolicy) backoff() *backoff.ExponentialBackOff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = p.Initial
	bo.MaxInterval = p.Max
	bo.Multiplier = 2
	bo.RandomizationFactor = 0.2
	bo.MaxElapsedTime = 0
	bo.Reset()
	return bo
}

// Client is a connection to an etcd cluster through its HTTP/JSON gateway. It is
// safe for concurrent use; create one and share it. The zero value is not usable:
// call New. Close it to stop its watches and its background work, and to release
// its connections.
type Client struct {
	hc           *http.Client
	ownHC        bool
	eps          atomic.Pointer[[]*endpoint]
	rr           atomic.Uint32 // round-robin position
	apiPath      string
	reqTimeout   time.Duration
	retryTimeout time.Duration
	retry        RetryPolicy
	maxReqBytes  int
	log          *slog.Logger
	auth         *authState  // nil without credentials
	certAsked    atomic.Bool // a server asked for a client certificate we do not have

	mu      sync.Mutex
	closed  bool
	watches map[*Watch]struct{}

	stop     context.CancelFunc // ends the sync goroutine
	syncDone chan struct{}
}

// New returns a Client for cfg. It reads the TLS files and checks the
// configuration, but does no network I/O: the first call connects.
func New(cfg Config) (*Client, error) {
	c := &Client{
		apiPath:      strings.TrimRight(cfg.APIPath, "/"),
		reqTimeout:   cfg.RequestTimeout,
		retryTimeout: cfg.RetryTimeout,
		retry:        cfg.Retry,
		maxReqBytes:  cfg.MaxRequestBytes,
		log:          cfg.Logger,
		watches:      make(map[*Watch]struct{}),
	}
	if c.apiPath != "" && !strings.HasPrefix(c.apiPath, "/") {
		c.apiPath = "/" + c.apiPath
	}
	if c.maxReqBytes == 0 {
		c.maxReqBytes = DefaultMaxRequestBytes
	}
	if c.retryTimeout == 0 {
		c.retryTimeout = 5 * time.Second
	}
	if c.retry.Initial <= 0 {
		c.retry.Initial = 50 * time.Millisecond
	}
	if c.retry.Max <= 0 {
		c.retry.Max = 2 * time.Second
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Username != "" {
		c.auth = &authState{user: cfg.Username, password: cfg.Password}
	} else if cfg.Password != "" {
		return nil, errors.New("gateway: a Password without a Username")
	}
	raw := cfg.Endpoints
	if len(raw) == 0 {
		raw = []string{"http://localhost:2379"}
	}
	eps := make([]*endpoint, 0, len(raw))
	for _, r := range raw {
		base, err := parseEndpoint(r)
		if err != nil {
			return nil, err
		}
		eps = append(eps, newEndpoint(base))
	}
	c.eps.Store(&eps)
	if cfg.HTTPClient != nil {
		c.hc = cfg.HTTPClient
	} else {
		tlsCfg, err := buildTLS(cfg, &c.certAsked)
		if err != nil {
			return nil, err
		}
		c.hc = &http.Client{Transport: newTransport(cfg, tlsCfg)}
		c.ownHC = true
	}
	if cfg.SyncInterval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		c.stop, c.syncDone = cancel, make(chan struct{})
		go c.syncLoop(ctx, cfg.SyncInterval)
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

func newTransport(cfg Config, tlsCfg *tls.Config) *http.Transport {
	dialTimeout := cfg.DialTimeout
	if dialTimeout == 0 {
		dialTimeout = 5 * time.Second
	}
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSClientConfig:       tlsCfg,
		MaxIdleConns:          4 * maxConnsPerMember,
		MaxIdleConnsPerHost:   maxConnsPerMember,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
		// HTTP/2 only over TLS: on a plain-text port, h2c would reach etcd's
		// gRPC server instead of the gateway.
		ForceAttemptHTTP2: true,
	}
}

// Endpoints returns the base URLs the client talks to.
func (c *Client) Endpoints() []string {
	eps := *c.eps.Load()
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = ep.base
	}
	return out
}

// Close stops every watch the client started and its background work, waits for
// their goroutines, then releases idle connections. Calls made after Close fail
// with ErrClosed. Close is safe to call more than once.
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
	if c.stop != nil {
		c.stop()
		<-c.syncDone
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

// pick returns the next endpoint to use, round-robin over the healthy ones that
// are not in skip; when none is healthy, the one that comes out of its backoff
// first. It returns nil when every endpoint is in skip.
func (c *Client) pick(skip []*endpoint) *endpoint {
	eps := *c.eps.Load()
	n := len(eps)
	start := int(c.rr.Add(1))
	now := time.Now().UnixNano()
	var soonest *endpoint
	for i := 0; i < n; i++ {
		ep := eps[(start+i)%n]
		if slices.Contains(skip, ep) {
			continue
		}
		if ep.usable(now) {
			return ep
		}
		if soonest == nil || ep.downUntil.Load() < soonest.downUntil.Load() {
			soonest = ep
		}
	}
	return soonest
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
	return c.version(ctx, c.pick(nil))
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
	return c.prefix(ctx, c.pick(nil))
}

func (c *Client) prefix(ctx context.Context, ep *endpoint) (string, error) {
	if c.apiPath != "" {
		return c.apiPath, nil
	}
	ep.prefixMu.Lock()
	defer ep.prefixMu.Unlock()
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
	return c.post(ctx, rpc{path: op}, body, resp)
}

// call encodes req, checks its size, and posts it.
func (c *Client) call(ctx context.Context, r rpc, size int, req, resp any) error {
	if c.maxReqBytes > 0 && size > c.maxReqBytes {
		return localError(r.path, ErrRequestTooLarge, fmt.Sprintf(
			"request of about %d bytes exceeds the server's limit of %d bytes (Config.MaxRequestBytes); not sent", size, c.maxReqBytes))
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(req); err != nil {
		return &Error{Op: r.path, Message: "encode request", Err: err}
	}
	return c.post(ctx, r, buf.Bytes(), resp)
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

// verdict is what a failed attempt means for the call.
type verdict int

const (
	final   verdict = iota // return the error
	retry                  // the member could not serve it; try another
	unknown                // it may have been applied: return ErrOutcomeUnknown
)

// judge decides whether a failed attempt of r may be sent again. A request that
// certainly did not reach a server, or that the server refused before applying
// (no leader, too many requests), may go to another member. One that may have
// been applied (the connection broke after sending, the server timed out) is
// sent again only if it is idempotent.
func judge(ctx context.Context, r rpc, err error) verdict {
	var e *Error
	if !errors.As(err, &e) {
		return final
	}
	mayRetry := retry
	if !r.idempotent {
		mayRetry = unknown
	}
	switch {
	case tlsRefused(err):
		// A certificate the other side does not accept: nothing was applied,
		// and no other member will think differently.
		return final
	case notSent(err):
		if ctx.Err() != nil {
			return final
		}
		return retry
	case ctx.Err() != nil:
		if r.idempotent {
			return final
		}
		return unknown
	case e.transport:
		return mayRetry
	case errors.Is(err, ErrNoLeader) || e.notApplied:
		return retry
	case errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout):
		return mayRetry
	}
	return final
}

// onEndpoints runs try against one member after another until one serves it, the
// error is final, or RetryTimeout has passed; after each pass over every member
// it waits a backoff. Members that fail are put aside for their own backoff.
func (c *Client) onEndpoints(ctx context.Context, r rpc, try func(*endpoint) error) error {
	var tried []*endpoint
	var wait *backoff.ExponentialBackOff
	var deadline time.Time
	var lastErr error
	for {
		ep := c.pick(tried)
		if ep == nil {
			if wait == nil {
				if c.retryTimeout < 0 {
					return lastErr
				}
				wait = c.retry.backoff()
				deadline = time.Now().Add(c.retryTimeout)
			}
			d := wait.NextBackOff()
			if time.Now().Add(d).After(deadline) {
				return lastErr
			}
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return lastErr
			case <-t.C:
			}
			tried = tried[:0]
			continue
		}
		err := try(ep)
		if err == nil {
			ep.markOK()
			return nil
		}
		var e *Error
		if c.certAsked.Load() && errors.As(err, &e) && (e.transport || e.unsent) {
			return &Error{Op: e.Op, Endpoint: e.Endpoint, Err: e.Err,
				Message: "the server requires a client certificate and none is configured (Config.CertFile, Config.KeyFile)"}
		}
		switch judge(ctx, r, err) {
		case final:
			return err
		case unknown:
			return outcomeUnknown(err)
		}
		ep.markFailed()
		c.log.Warn("etcd member failed; trying another", "endpoint", ep.base, "op", r.path, "err", err)
		tried = append(tried, ep)
		lastErr = err
	}
}

func (c *Client) postTo(ctx context.Context, ep *endpoint, op string, body []byte, resp any, token string) error {
	hr, err := c.send(ctx, ep, op, body, nil, token)
	if err != nil {
		return err
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	_, err = buf.ReadFrom(hr.Body)
	hr.Body.Close()
	if err != nil {
		return transportError(op, ep.base, err)
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

// send posts body to op on ep and returns the reply if its status is 200; any
// other status is read and returned as a *Error.
func (c *Client) send(ctx context.Context, ep *endpoint, op string, body []byte, header http.Header, token string) (*http.Response, error) {
	prefix, err := c.prefix(ctx, ep)
	if err != nil {
		return nil, unsentError(op, ep.base, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.base+prefix+"/"+op, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Op: op, Endpoint: ep.base, Err: err, unsent: true}
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

// notSent reports whether a request certainly did not reach a server: it failed
// before it was written (the API path could not be detected, the connection was
// refused or could not be dialled), so sending it elsewhere cannot apply it twice.
func notSent(err error) bool {
	var e *Error
	if errors.As(err, &e) && e.unsent {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// tlsRefused reports a TLS handshake that failed over certificates: ours
// rejected by the server, or the server's rejected by us.
func tlsRefused(err error) bool {
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	var unknownCA x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &unknownCA) ||
		errors.As(err, &host) || errors.As(err, &invalid) {
		return true
	}
	// An alert from the server ("certificate required", "bad certificate")
	// comes as a *net.OpError whose Op crypto/tls sets to "remote error".
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// call sends a unary request and decodes its reply into a new T.
func call[T any](ctx context.Context, c *Client, r rpc, size int, req any) (*T, error) {
	resp := new(T)
	if err := c.call(ctx, r, size, req, resp); err != nil {
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
