package testutil

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// What a LossyProxy does to the next transaction whose body holds its marker.
const (
	PassAll     int32 = iota
	LoseRequest       // it is not forwarded; its connection is cut
	LoseReply         // it reaches etcd; its reply is cut
	LoseAll           // like LoseReply, then every later request is cut too, until Restore
)

// LossyProxy forwards a client's requests to a real etcd and, as a network
// failure would, cuts the connection of the next transaction whose body holds
// its marker, before or after forwarding it (Lose).
type LossyProxy struct {
	*httptest.Server
	mode    atomic.Int32
	cutting atomic.Bool  // cut every request (after LoseAll's transaction)
	cuts    atomic.Int64 // connections cut
}

// NewLossyProxy starts a proxy to target, closed in t.Cleanup. A marker of
// `"lease"` matches a transaction that puts under a lease; a JSON field name
// such as `"request_delete_range"` one that holds such an operation (keys and
// values travel in base64, so they cannot be matched).
func NewLossyProxy(t testing.TB, target, marker string) *LossyProxy {
	p := &LossyProxy{}
	fwd := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(fwd.CloseIdleConnections)
	cut := func() {
		p.cuts.Add(1)
		panic(http.ErrAbortHandler)
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || p.cutting.Load() {
			cut()
		}
		mode := PassAll
		if r.URL.Path == "/v3/kv/txn" && bytes.Contains(body, []byte(marker)) {
			mode = p.mode.Swap(PassAll)
		}
		if mode == LoseRequest {
			cut()
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.Path, bytes.NewReader(body))
		if err != nil {
			cut()
		}
		req.Header = r.Header.Clone()
		resp, err := fwd.Do(req)
		if err != nil {
			cut()
		}
		defer resp.Body.Close()
		reply, err := io.ReadAll(resp.Body)
		if err != nil || mode == LoseReply || mode == LoseAll {
			p.cutting.Store(mode == LoseAll)
			cut()
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(reply)
	}))
	t.Cleanup(p.Close)
	t.Cleanup(p.Restore)
	return p
}

// Lose sets what happens to the next matching transaction.
func (p *LossyProxy) Lose(mode int32) { p.mode.Store(mode) }

// Pending returns what will happen to the next matching transaction: PassAll
// once one has matched.
func (p *LossyProxy) Pending() int32 { return p.mode.Load() }

// Cutting reports whether every request is being cut (after LoseAll's
// transaction).
func (p *LossyProxy) Cutting() bool { return p.cutting.Load() }

// Restore stops cutting every request.
func (p *LossyProxy) Restore() { p.cutting.Store(false) }

// Cuts returns how many connections the proxy has cut.
func (p *LossyProxy) Cuts() int64 { return p.cuts.Load() }
