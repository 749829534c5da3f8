package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// endpoint is one member's base URL, its detected API prefix, and its health: a
// member that failed is left alone for a backoff interval that grows with each
// failure in a row, so a dead member is not hammered, and is tried again when the
// interval has passed.
type endpoint struct {
	base string // scheme://host[:port][/path], no trailing slash

	prefixMu sync.Mutex
	prefix   string // detected API prefix; "" until detected

	downUntil atomic.Int64 // unix nanoseconds; 0 when healthy
	proto     atomic.Int32 // HTTP major version of its last reply; 0 until one came
	mu        sync.Mutex
	failures  int
	bo        *backoff.ExponentialBackOff
}

// sawProto records the HTTP major version of a reply from ep. It writes only
// on a change: every reply passes here, from every caller at once.
func (ep *endpoint) sawProto(major int) {
	if ep.proto.Load() != int32(major) {
		ep.proto.Store(int32(major))
	}
}

func newEndpoint(base string) *endpoint {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxInterval = 10 * time.Second
	bo.RandomizationFactor = 0.2
	bo.MaxElapsedTime = 0 // a member is never given up on
	return &endpoint{base: base, bo: bo}
}

func (ep *endpoint) usable(now int64) bool {
	d := ep.downUntil.Load()
	return d == 0 || now >= d
}

// markFailed puts the endpoint aside for its next backoff interval.
func (ep *endpoint) markFailed() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.failures++
	ep.downUntil.Store(time.Now().Add(ep.bo.NextBackOff()).UnixNano())
}

// markOK records a success; it is cheap when the endpoint was healthy already.
func (ep *endpoint) markOK() {
	if ep.downUntil.Load() == 0 {
		return
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.failures = 0
	ep.bo.Reset()
	ep.downUntil.Store(0)
}
