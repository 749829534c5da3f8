package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

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
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return pooledCopyConn{c}, nil
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dial,
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

// pooledCopyConn is a connection whose ReadFrom copies through a pooled
// buffer. net/http writes a request body of known length by handing the
// connection a LimitedReader, and a TCP connection's own ReadFrom then
// allocates a 32 KB buffer for each request: for a coalesced batch, the
// largest allocation a call made (go test -bench Put/c64 -benchmem ./gateway).
// Under TLS the connection sits below the TLS layer, and HTTP/2 has buffers of
// its own.
type pooledCopyConn struct{ net.Conn }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// ReadFrom copies r to the connection through a pooled buffer.
func (c pooledCopyConn) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	// Only Write is shown, so that the copy does not come back to a ReadFrom.
	return io.CopyBuffer(struct{ io.Writer }{c.Conn}, r, *buf)
}

// buildTLS makes the TLS configuration for https endpoints from Config.TLS and the
// PEM files, and reports a file that is missing, holds no certificate, or a key
// that does not match its certificate, now rather than at the first request.
//
// When no client certificate is configured it notes in certAsked that a server
// asked for one: under TLS 1.3 the server refuses the client only after the
// client's handshake is done, and HTTP/2 then reports a bare "connection could
// not be established"; the note lets the client say what is wrong.
func buildTLS(cfg Config, certAsked *atomic.Bool) (*tls.Config, error) {
	if cfg.TLS == nil && cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" && cfg.ServerName == "" {
		return nil, nil
	}
	t := &tls.Config{}
	if cfg.TLS != nil {
		t = cfg.TLS.Clone()
	}
	if t.MinVersion == 0 {
		t.MinVersion = tls.VersionTLS12
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CA file: %w", ErrInvalidConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrInvalidConfig, cfg.CAFile)
		}
		t.RootCAs = pool
	}
	switch {
	case cfg.CertFile != "" && cfg.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate %s and key %s: %w", ErrInvalidConfig, cfg.CertFile, cfg.KeyFile, err)
		}
		t.Certificates = []tls.Certificate{cert}
	case cfg.CertFile != "" || cfg.KeyFile != "":
		return nil, fmt.Errorf("%w: CertFile and KeyFile go together: set both or neither", ErrInvalidConfig)
	}
	if cfg.ServerName != "" {
		t.ServerName = cfg.ServerName
	}
	if len(t.Certificates) == 0 && t.GetClientCertificate == nil {
		t.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			certAsked.Store(true)
			return &tls.Certificate{}, nil // go on without one; the server decides
		}
	}
	return t, nil
}
