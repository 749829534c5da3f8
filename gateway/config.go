package gateway

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// DefaultMaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB).
const DefaultMaxRequestBytes = 3 * 1024 * 1024 / 2

// DefaultMaxTxnOps is etcd's default --max-txn-ops.
const DefaultMaxTxnOps = 128

// DefaultMaxReplyBytes bounds what the client reads of one reply, or of one
// message of a stream, unless Config.MaxReplyBytes says otherwise: 256 MiB.
const DefaultMaxReplyBytes = 256 << 20

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

	// MaxTxnOps is the server's --max-txn-ops: the most operations a batch of
	// coalesced calls holds. Zero means DefaultMaxTxnOps. It does not limit the
	// transactions you build: the server does. Set it lower to bound the
	// memory a write-heavy client makes the server hold (see the package
	// documentation: a batch is one raft entry).
	MaxTxnOps int

	// DisableCoalescing sends every Get, Put and Delete as its own request.
	// By default, calls made at the same time from different goroutines go to
	// the server together as the operations of one transaction, each with its
	// own result and its own error; a call made while the client is idle is
	// sent at once, alone. See the package documentation.
	DisableCoalescing bool

	// MaxReplyBytes bounds what the client reads of one reply or one message of
	// a stream, so that a broken or hostile endpoint cannot exhaust its memory
	// (clientv3's receive-size limit). A larger reply fails with an error
	// matching ErrReplyTooLarge, and its connection is dropped. Zero means
	// DefaultMaxReplyBytes; negative means no limit. Page through large ranges
	// with WithLimit rather than raising it.
	MaxReplyBytes int64

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
	// Initial is the first wait.
	Initial time.Duration
	// Max is the longest wait; each wait doubles the last, up to Max.
	Max time.Duration
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

func parseEndpoint(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: an endpoint is empty", ErrInvalidConfig)
	}
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%w: endpoint %q: %w", ErrInvalidConfig, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: endpoint %q: scheme %q is not http or https", ErrInvalidConfig, raw, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%w: endpoint %q has no host", ErrInvalidConfig, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: endpoint %q: query, fragment and user info are not allowed", ErrInvalidConfig, raw)
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
}
