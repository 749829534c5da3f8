package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client is a connection to an etcd cluster through its HTTP/JSON gateway. It is
// safe for concurrent use; create one and share it. The zero value is not usable:
// call New. Close it to stop its watches and its background work, and to release
// its connections.
type Client struct {
	*state              // shared by the client and its namespace views
	ns           []byte // the namespace every key is under (WithNamespace); empty: none
	apiPath      string
	reqTimeout   time.Duration
	retryTimeout time.Duration
	retry        RetryPolicy
	maxReqBytes  int
	maxTxnOps    int
	maxReply     int64 // Config.MaxReplyBytes; negative: no limit
	log          *slog.Logger
}

// state is what a Client and its namespace views share: the connections, the
// endpoints, the token, the watches and the client's life.
type state struct {
	hc        *http.Client
	ownHC     bool
	eps       atomic.Pointer[[]*endpoint]
	rr        atomic.Uint32 // round-robin position
	auth      *authState    // nil without credentials
	certAsked atomic.Bool   // a server asked for a client certificate we do not have

	mu      sync.Mutex
	closed  bool
	watches map[*Watch]struct{}

	stop     context.CancelFunc // ends the sync goroutine
	syncDone chan struct{}

	// coalescing (coalesce.go); nil when Config.DisableCoalescing
	batches       *coalescer // writes and linearizable reads
	serialBatches *coalescer // serializable reads
	endLife       context.CancelFunc
	flushers      sync.WaitGroup

	hub hubState // the shared watch streams of Await (await.go)
}

// New returns a Client for cfg. It reads the TLS files and checks the
// configuration, but does no network I/O: the first call connects.
func New(cfg Config) (*Client, error) {
	c := &Client{
		state:        &state{watches: make(map[*Watch]struct{})},
		apiPath:      strings.TrimRight(cfg.APIPath, "/"),
		reqTimeout:   cfg.RequestTimeout,
		retryTimeout: cfg.RetryTimeout,
		retry:        cfg.Retry,
		maxReqBytes:  cfg.MaxRequestBytes,
		maxTxnOps:    cfg.MaxTxnOps,
		maxReply:     cfg.MaxReplyBytes,
		log:          cfg.Logger,
	}
	if c.apiPath != "" && !strings.HasPrefix(c.apiPath, "/") {
		c.apiPath = "/" + c.apiPath
	}
	if c.maxReply == 0 {
		c.maxReply = DefaultMaxReplyBytes
	}
	if c.maxReqBytes == 0 {
		c.maxReqBytes = DefaultMaxRequestBytes
	}
	if c.maxTxnOps <= 0 {
		c.maxTxnOps = DefaultMaxTxnOps
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
		return nil, fmt.Errorf("%w: a Password without a Username", ErrInvalidConfig)
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
	if !cfg.DisableCoalescing {
		life, end := context.WithCancel(context.Background())
		c.endLife = end
		c.batches = newCoalescer(c, life, &c.flushers)
		c.serialBatches = newCoalescer(c, life, &c.flushers)
	}
	if cfg.SyncInterval > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		c.stop, c.syncDone = cancel, make(chan struct{})
		go c.syncLoop(ctx, cfg.SyncInterval)
	}
	return c, nil
}

// Logger returns Config.Logger, or a logger that discards, never nil. Leases
// and the recipes built on a client log through it unless told otherwise.
func (c *Client) Logger() *slog.Logger { return c.log }

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
	c.hub().close()
	if c.stop != nil {
		c.stop()
		<-c.syncDone
	}
	if c.batches != nil {
		c.batches.close()
		c.serialBatches.close()
		c.endLife()
		c.flushers.Wait()
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

// pinned returns r sent to o's endpoint alone (WithEndpoint), or r as it is.
// The endpoint shares the state of the client's endpoint of the same URL.
func (c *Client) pinned(r rpc, o *Op) (rpc, error) {
	if o.endpoint == "" {
		return r, nil
	}
	base, err := parseEndpoint(o.endpoint)
	if err != nil {
		return r, err
	}
	for _, ep := range *c.eps.Load() {
		if ep.base == base {
			r.pin = ep
			return r, nil
		}
	}
	r.pin = newEndpoint(base)
	return r, nil
}

// callOpts applies opts to an Op, for calls that take options but no key.
func callOpts(opts []Option) *Op {
	o := &Op{}
	for _, opt := range opts {
		opt(o)
	}
	return o
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
