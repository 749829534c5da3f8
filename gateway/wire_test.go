package gateway_test

// Wire edge cases that a real etcd does not produce on demand: odd chunking, cut
// and garbled streams, both generations of error shapes, proxies' pages. Real
// behaviour is tested against real servers in the other files.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

// fake is an httptest gateway that answers /version and hands every API request to
// handle, recording the paths and bodies it received.
type fake struct {
	*httptest.Server
	mu     sync.Mutex
	paths  []string
	bodies []string
}

func newFake(t *testing.T, version string, handle http.HandlerFunc) *fake {
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			if version == "" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintf(w, `{"etcdserver":%q,"etcdcluster":"3.0.0"}`, version)
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.paths = append(f.paths, r.URL.Path)
		f.bodies = append(f.bodies, string(b))
		f.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// client returns a client of the fake alone that makes a single pass over its
// endpoints, so a shape test sees the first answer.
func (f *fake) client(t *testing.T, mod ...func(*gateway.Config)) *gateway.Client {
	single := func(cfg *gateway.Config) { cfg.RetryTimeout = -1 }
	return tu.Client(t, []string{f.URL}, append([]func(*gateway.Config){single}, mod...)...)
}

func (f *fake) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.paths)
}

func cut(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// TestRetryRules: what is sent again, to which member, and what is not.
func TestRetryRules(t *testing.T) {
	ok := reply(200, `{"header":{"revision":"7"}}`)
	cases := []struct {
		name      string
		bad       http.HandlerFunc
		write     bool
		wantErr   error // nil: the call succeeds through the second member
		wantFirst int   // requests the bad member received
	}{
		{"read after a cut connection", cut, false, nil, 1},
		{"write after a cut connection", cut, true, gateway.ErrOutcomeUnknown, 1},
		{"write refused: no leader", reply(503, `{"code":14,"message":"etcdserver: no leader"}`), true, nil, 1},
		{"write refused: too many requests", reply(503, `{"code":14,"message":"etcdserver: too many requests"}`), true, nil, 1},
		{"write timed out", reply(503, `{"code":14,"message":"etcdserver: request timed out"}`), true, gateway.ErrOutcomeUnknown, 1},
		{"read timed out", reply(503, `{"code":14,"message":"etcdserver: request timed out"}`), false, nil, 1},
		{"write, leader changed", reply(503, `{"code":14,"message":"etcdserver: leader changed"}`), true, gateway.ErrOutcomeUnknown, 1},
		{"definite error", reply(400, `{"code":3,"message":"etcdserver: key is not provided"}`), true, gateway.ErrEmptyKey, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := newFake(t, "3.6.16", tc.bad)
			good := newFake(t, "3.6.16", ok)
			c := tu.Client(t, []string{bad.URL, good.URL})
			for i := 0; i < 2; i++ { // round-robin: make sure the bad one comes first once
				goodBefore := good.requests()
				var err error
				if tc.write {
					_, err = c.Put(t.Context(), "k", "v")
				} else {
					_, err = c.Get(t.Context(), "k")
				}
				if bad.requests() == 0 {
					continue
				}
				if tc.wantErr == nil {
					if err != nil {
						t.Fatal(err)
					}
				} else {
					isErr(t, err, tc.wantErr)
				}
				tu.Eq(t, "requests to the failing member", bad.requests(), tc.wantFirst)
				if tc.wantErr != nil {
					tu.Eq(t, "requests sent on to the other member", good.requests()-goodBefore, 0)
				}
				if errors.Is(err, gateway.ErrOutcomeUnknown) && !strings.Contains(err.Error(), "outcome unknown") {
					t.Fatalf("message %q does not say the outcome is unknown", err)
				}
				return
			}
			t.Fatal("the failing member was never tried")
		})
	}
}

// TestFailingMemberNotHammered: a member that keeps failing is put aside with a
// growing backoff while the healthy one serves.
func TestFailingMemberNotHammered(t *testing.T) {
	bad := newFake(t, "3.6.16", reply(503, `{"code":14,"message":"etcdserver: no leader"}`))
	good := newFake(t, "3.6.16", reply(200, `{}`))
	c := tu.Client(t, []string{bad.URL, good.URL})
	const calls = 200
	for i := 0; i < calls; i++ {
		tu.Must[*gateway.GetResponse](t)(c.Get(t.Context(), "k"))
	}
	if n := bad.requests(); n > 3 {
		t.Fatalf("the failing member got %d of %d requests", n, calls)
	}
	tu.Eq(t, "served by the healthy member", good.requests(), calls)
}

// TestAllMembersDown: with no member able to serve, a call keeps trying until
// RetryTimeout, then fails with the last error; the caller's ctx cuts it short.
func TestAllMembersDown(t *testing.T) {
	bad := newFake(t, "3.6.16", reply(503, `{"code":14,"message":"etcdserver: no leader"}`))
	c := tu.Client(t, []string{bad.URL}, func(cfg *gateway.Config) {
		cfg.RetryTimeout = 300 * time.Millisecond
		cfg.Retry = gateway.RetryPolicy{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}
	})
	start := time.Now()
	_, err := c.Get(t.Context(), "k")
	isErr(t, err, gateway.ErrNoLeader)
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("gave up after %v", el)
	}
	if bad.requests() < 2 {
		t.Fatalf("tried %d times in RetryTimeout", bad.requests())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = c.Get(ctx, "k")
	if !errors.Is(err, context.Canceled) && !errors.Is(err, gateway.ErrNoLeader) {
		t.Fatalf("cancelled call: %v", err)
	}
}

func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestUnaryErrorShapes(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		want    error
		code    gateway.Code
		message string
	}{
		{"3.4 shape", 400, `{"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11}`,
			gateway.ErrCompacted, gateway.CodeOutOfRange, "etcdserver: mvcc: required revision has been compacted"},
		{"3.6 shape", 400, `{"code":11,"message":"etcdserver: mvcc: required revision has been compacted"}`,
			gateway.ErrCompacted, gateway.CodeOutOfRange, "etcdserver: mvcc: required revision has been compacted"},
		{"stream shape before the stream (3.6)", 401, `{"error":{"code":16,"message":"etcdserver: invalid auth token"}}`,
			gateway.ErrInvalidAuthToken, gateway.CodeUnauthenticated, "etcdserver: invalid auth token"},
		{"stream shape before the stream (3.5)", 401, `{"error":{"grpc_code":16,"http_code":401,"message":"etcdserver: invalid auth token","http_status":"Unauthorized"}}`,
			gateway.ErrInvalidAuthToken, gateway.CodeUnauthenticated, "etcdserver: invalid auth token"},
		{"3.4 shape, error only", 404, `{"error":"etcdserver: requested lease not found","code":5}`,
			gateway.ErrLeaseNotFound, gateway.CodeNotFound, "etcdserver: requested lease not found"},
		{"no leader", 503, `{"code":14,"message":"etcdserver: no leader"}`, gateway.ErrNoLeader, gateway.CodeUnavailable, "etcdserver: no leader"},
		{"unknown unavailable", 503, `{"code":14,"message":"something new"}`, gateway.ErrUnavailable, gateway.CodeUnavailable, "something new"},
		{"nospace", 429, `{"code":8,"message":"etcdserver: mvcc: database space exceeded"}`, gateway.ErrNoSpace, gateway.CodeResourceExhausted, ""},
		{"invalid token", 401, `{"code":16,"message":"etcdserver: invalid auth token"}`, gateway.ErrInvalidAuthToken, gateway.CodeUnauthenticated, ""},
		{"old auth revision", 400, `{"code":9,"message":"etcdserver: revision of auth store is old"}`, gateway.ErrAuthOldRevision, gateway.CodeFailedPrecondition, ""},
		{"permission", 403, `{"code":7,"message":"etcdserver: permission denied"}`, gateway.ErrPermissionDenied, gateway.CodePermissionDenied, ""},
		{"timeout", 503, `{"code":14,"message":"etcdserver: request timed out, possibly due to previous leader failure"}`, gateway.ErrTimeout, gateway.CodeUnavailable, ""},
		{"proxy page", 502, `<html><body>Bad Gateway</body></html>`, gateway.ErrUnavailable, gateway.CodeOK, ""},
		{"path not served", 404, "404 page not found\n", gateway.ErrUnimplemented, gateway.CodeOK, ""},
		{"unimplemented code", 501, `{"code":12,"message":"unknown method"}`, gateway.ErrUnimplemented, gateway.CodeUnimplemented, ""},
		{"empty error reply", 500, ``, gateway.ErrMalformedResponse, gateway.CodeOK, ""},
		{"empty 200", 200, ``, gateway.ErrMalformedResponse, gateway.CodeOK, ""},
		{"garbage 200", 200, `{"header":`, gateway.ErrMalformedResponse, gateway.CodeOK, ""},
		{"wrong types", 200, `{"kvs":"not a list"}`, gateway.ErrMalformedResponse, gateway.CodeOK, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "3.6.16", reply(tc.status, tc.body))
			_, err := f.client(t).Get(t.Context(), "k")
			isErr(t, err, tc.want)
			var ge *gateway.Error
			errors.As(err, &ge)
			tu.Eq(t, "status", ge.Status, tc.status)
			tu.Eq(t, "code", ge.Code, tc.code)
			tu.Eq(t, "op", ge.Op, "kv/range")
			tu.Eq(t, "endpoint", ge.Endpoint, f.URL)
			if tc.message != "" {
				tu.Eq(t, "message", ge.Message, tc.message)
			}
			if !strings.Contains(err.Error(), "kv/range") {
				t.Fatalf("message %q does not name the op", err)
			}
		})
	}
}

func TestConnectionCut(t *testing.T) {
	f := newFake(t, "3.6.16", cut)
	_, err := f.client(t).Put(t.Context(), "k", "v")
	isErr(t, err, gateway.ErrUnavailable)
	isErr(t, err, gateway.ErrOutcomeUnknown)
	var ge *gateway.Error
	errors.As(err, &ge)
	if ge.Err == nil || ge.Status != 0 {
		t.Fatalf("cut connection: %#v", ge)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	tu.Eq(t, "a POST is not replayed by the transport", len(f.paths), 1)
}

func TestAPIPathDetection(t *testing.T) {
	cases := []struct{ version, override, want string }{
		{"3.6.16", "", "/v3"},
		{"3.6.0-rc.1", "", "/v3"},
		{"3.4.23", "", "/v3"},
		{"3.3.0-rc.1", "", "/v3beta"},
		{"3.3.27", "", "/v3beta"},
		{"3.2.9", "", "/v3alpha"},
		{"4.0.0+git", "", "/v3"},
		{"", "", "/v3"}, // no /version: assume a current server
		{"3.2.9", "v3beta", "/v3beta"},
	}
	for _, tc := range cases {
		t.Run(tc.version+tc.override, func(t *testing.T) {
			f := newFake(t, tc.version, reply(200, `{"header":{"revision":"1"}}`))
			c := f.client(t, func(cfg *gateway.Config) { cfg.APIPath = tc.override })
			tu.Must[*gateway.GetResponse](t)(c.Get(t.Context(), "k"))
			tu.Must[*gateway.GetResponse](t)(c.Get(t.Context(), "k"))
			f.mu.Lock()
			defer f.mu.Unlock()
			eqStrings(t, "paths", f.paths, tc.want+"/kv/range", tc.want+"/kv/range")
		})
	}
	// Behind a proxy that mounts the gateway under a path.
	f := newFake(t, "", reply(200, `{}`))
	c := tu.Client(t, []string{f.URL + "/etcd/"}, func(cfg *gateway.Config) { cfg.APIPath = "/v3" })
	tu.Must[*gateway.PutResponse](t)(c.Put(t.Context(), "k", "v"))
	eqStrings(t, "proxied path", f.paths, "/etcd/v3/kv/put")
}

func TestEndpointParsing(t *testing.T) {
	good := map[string]string{
		"http://127.0.0.1:2379":  "http://127.0.0.1:2379",
		"127.0.0.1:2379":         "http://127.0.0.1:2379",
		"https://[::1]:2379/":    "https://[::1]:2379",
		"http://etcd:2379/a/b/":  "http://etcd:2379/a/b",
		" http://localhost:2379": "http://localhost:2379",
	}
	for in, want := range good {
		c, err := gateway.New(gateway.Config{Endpoints: []string{in}})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		eqStrings(t, in, c.Endpoints(), want)
	}
	c, _ := gateway.New(gateway.Config{})
	eqStrings(t, "default", c.Endpoints(), "http://localhost:2379")
	for _, bad := range []string{"", "ftp://x:1", "http://", "http://x:1/?q=1", "http://u:p@x:1"} {
		_, err := gateway.New(gateway.Config{Endpoints: []string{bad}})
		if !errors.Is(err, gateway.ErrInvalidConfig) {
			t.Fatalf("endpoint %q: %v, want an error matching ErrInvalidConfig", bad, err)
		}
	}
}

// streamServer writes a watch stream: the "created" message, then the given raw
// pieces, flushing after each.
func streamServer(pieces ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fl := w.(http.Flusher)
		io.WriteString(w, `{"result":{"header":{"revision":"10"},"created":true}}`)
		fl.Flush()
		for _, p := range pieces {
			io.WriteString(w, p)
			fl.Flush()
		}
	}
}

func eventJSON(rev int, key, val string) string {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf(`{"result":{"header":{"revision":"%d"},"events":[{"kv":{"key":%q,"value":%q,"create_revision":"%d","mod_revision":"%d","version":"1"}}]}}`,
		rev, b64([]byte(key)), b64([]byte(val)), rev, rev)
}

func TestWatchOddChunking(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	msg := eventJSON(11, "k", "small") + "\n\n" + eventJSON(12, "k", big) + "\r\n" + eventJSON(13, "k", "last")
	// One byte per chunk for the first message, then a blank chunk, then the
	// rest split in uneven pieces.
	var pieces []string
	for i := 0; i < 60; i++ {
		pieces = append(pieces, msg[i:i+1])
	}
	pieces = append(pieces, "", "   ")
	for i := 60; i < len(msg); i += 7777 {
		pieces = append(pieces, msg[i:min(i+7777, len(msg))])
	}
	f := newFake(t, "3.6.16", streamServer(pieces...))
	c := f.client(t)
	ctx := tu.Ctx(t)
	w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "k"))
	defer w.Stop()
	evs := collect(t, ctx, w, 3)
	tu.Eq(t, "first", string(evs[0].Kv.Value), "small")
	tu.Eq(t, "big", len(evs[1].Kv.Value), len(big))
	tu.Eq(t, "last", string(evs[2].Kv.Value), "last")
	tu.Eq(t, "resume revision", w.Revision(), 14)
}

func TestWatchMidStreamErrors(t *testing.T) {
	cases := []struct {
		name string
		tail string
		want error
		code gateway.Code
	}{
		{"3.4 shape", `{"error":{"grpc_code":7,"http_code":403,"message":"etcdserver: permission denied","http_status":"Forbidden"}}`,
			gateway.ErrPermissionDenied, gateway.CodePermissionDenied},
		{"3.6 shape", `{"error":{"code":7,"message":"etcdserver: permission denied"}}`,
			gateway.ErrPermissionDenied, gateway.CodePermissionDenied},
		{"cancel reason (3.6)", `{"result":{"header":{"revision":"11"},"watch_id":"-1","canceled":true,"cancel_reason":"etcdserver: permission denied"}}`,
			gateway.ErrPermissionDenied, gateway.CodeOK},
		{"unknown cancel reason", `{"result":{"header":{"revision":"11"},"canceled":true,"cancel_reason":"something else"}}`,
			gateway.ErrWatchCanceled, gateway.CodeOK},
		{"garbage", `{"result":{"events":[}`, gateway.ErrMalformedResponse, gateway.CodeOK},
		{"neither result nor error", `{"something":1}`, gateway.ErrMalformedResponse, gateway.CodeOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "3.6.16", streamServer(eventJSON(11, "k", "v"), tc.tail))
			ctx := tu.Ctx(t)
			w := tu.Must[*gateway.Watch](t)(f.client(t).Watch(ctx, "k"))
			tu.Eq(t, "event before the error", string(collect(t, ctx, w, 1)[0].Kv.Value), "v")
			err := ended(t, ctx, w)
			isErr(t, err, tc.want)
			var ge *gateway.Error
			errors.As(err, &ge)
			tu.Eq(t, "code", ge.Code, tc.code)
		})
	}
}

// TestWatchResumesAfterCut: a stream cut in the middle of a message is resumed
// with a new request at the revision after the last delivered one.
func TestWatchResumesAfterCut(t *testing.T) {
	var calls sync.WaitGroup
	calls.Add(2)
	n := 0
	var mu sync.Mutex
	f := newFake(t, "3.6.16", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		call := n
		mu.Unlock()
		if call <= 2 {
			defer calls.Done()
		}
		switch call {
		case 1:
			ev := eventJSON(12, "k", "second")
			streamServer(eventJSON(11, "k", "first"), ev[:len(ev)/2])(w, r)
		default:
			streamServer(eventJSON(12, "k", "second"))(w, r)
		}
	})
	ctx := tu.Ctx(t)
	c := f.client(t, func(cfg *gateway.Config) { cfg.Retry = gateway.RetryPolicy{Initial: 1, Max: 1} })
	w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "k", gateway.WithPrevKV()))
	defer w.Stop()
	evs := collect(t, ctx, w, 2)
	tu.Eq(t, "first", string(evs[0].Kv.Value), "first")
	tu.Eq(t, "second", string(evs[1].Kv.Value), "second")
	calls.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	var first, second struct {
		Create struct {
			Start  string `json:"start_revision"`
			PrevKV bool   `json:"prev_kv"`
		} `json:"create_request"`
	}
	// The first request starts "now"; the second at the revision after 11.
	json.Unmarshal([]byte(f.bodies[0]), &first)
	json.Unmarshal([]byte(strings.ReplaceAll(f.bodies[1], `"start_revision":12`, `"start_revision":"12"`)), &second)
	tu.Eq(t, "first start", first.Create.Start, "")
	tu.Eq(t, "resumed start", second.Create.Start, "12")
	tu.Eq(t, "options kept", second.Create.PrevKV, true)
}

func TestKeepAliveReplies(t *testing.T) {
	cases := []struct {
		name, body string
		want       error
	}{
		{"TTL 0: lease gone", `{"result":{"header":{"revision":"3"},"ID":"5"}}`, gateway.ErrLeaseNotFound},
		{"empty reply", ``, gateway.ErrUnavailable},
		{"3.4 mid-stream error", `{"error":{"grpc_code":16,"http_code":401,"message":"etcdserver: invalid auth token"}}`, gateway.ErrInvalidAuthToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "3.6.16", reply(200, tc.body))
			_, err := f.client(t).KeepAliveOnce(t.Context(), 5)
			isErr(t, err, tc.want)
		})
	}
	f := newFake(t, "3.6.16", reply(200, `{"result":{"header":{"revision":"3"},"ID":"5","TTL":"30"}}`+"\n"))
	ka := tu.Must[*gateway.LeaseKeepAliveResponse](t)(f.client(t).KeepAliveOnce(t.Context(), 5))
	tu.Eq(t, "TTL", ka.TTL, 30)
	tu.Eq(t, "request body", strings.TrimSpace(f.bodies[0]), `{"ID":5}`)
}

// TestRequestEncoding pins the JSON the client sends for the requests that have
// zero values that matter.
func TestRequestEncoding(t *testing.T) {
	f := newFake(t, "3.6.16", reply(200, `{}`))
	c := f.client(t)
	tu.Must[*gateway.TxnResponse](t)(c.Txn().If(gateway.CmpCreateRevision("k", gateway.Equal, 0)).Commit(t.Context()))
	tu.Must[*gateway.TxnResponse](t)(c.Txn().If(gateway.CmpValue("k", gateway.Equal, "")).Commit(t.Context()))
	var got []string
	for _, b := range f.bodies {
		got = append(got, strings.TrimSpace(b))
	}
	eqStrings(t, "bodies", got,
		`{"compare":[{"result":0,"target":1,"key":"aw==","create_revision":"0"}]}`,
		`{"compare":[{"result":0,"target":3,"key":"aw==","value":""}]}`)
}

// TestSyncWithoutClientURLs: a member list that names no client URL (members
// added but not started) leaves the endpoints as they were, with a typed error.
func TestSyncWithoutClientURLs(t *testing.T) {
	f := newFake(t, "3.6.16", reply(200, `{"header":{"revision":"3"},"members":[{"ID":"1","peerURLs":["http://127.0.0.1:1"]}]}`))
	c := f.client(t)
	err := c.Sync(tu.Ctx(t))
	if !errors.Is(err, gateway.ErrNoClientURLs) {
		t.Fatalf("Sync: %v, want an error matching ErrNoClientURLs", err)
	}
	eqStrings(t, "endpoints after a failed Sync", c.Endpoints(), f.URL)
}

// TestReplySizeBound: a reply, or a stream message, larger than MaxReplyBytes
// fails with ErrReplyTooLarge and is not read further; one of exactly the bound
// is read.
func TestReplySizeBound(t *testing.T) {
	// Larger than the fake's /version reply, which the same bound applies to.
	small := `{"header":{"revision":"7"},"count":"1"}` + strings.Repeat(" ", 100)
	for _, tc := range []struct {
		name string
		max  int64
		body string
		want error
	}{
		{"at the bound", int64(len(small)), small, nil},
		{"one byte over", int64(len(small)) - 1, small, gateway.ErrReplyTooLarge},
		{"far over", 1 << 10, `{"header":{"revision":"7"},"kvs":[{"key":"` + strings.Repeat("A", 1<<20) + `"}]}`, gateway.ErrReplyTooLarge},
		{"no bound", -1, `{"header":{"revision":"7"},"kvs":[{"key":"` + strings.Repeat("A", 1<<20) + `"}]}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, "3.6.16", reply(200, tc.body))
			c := f.client(t, func(cfg *gateway.Config) { cfg.MaxReplyBytes = tc.max })
			_, err := c.Get(t.Context(), "k")
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			isErr(t, err, tc.want)
			tu.Eq(t, "requests (a reply too large is not asked again)", f.requests(), 1)
		})
	}
	t.Run("stream message", func(t *testing.T) {
		f := newFake(t, "3.6.16", streamServer(eventJSON(11, "k", "v"), eventJSON(12, "k", strings.Repeat("x", 64<<10))))
		c := f.client(t, func(cfg *gateway.Config) { cfg.MaxReplyBytes = 4 << 10 })
		w := tu.Must[*gateway.Watch](t)(c.Watch(t.Context(), "k"))
		var got int
		for r := range w.Events() {
			got += len(r.Events)
		}
		tu.Eq(t, "events before the oversize message", got, 1)
		isErr(t, w.Err(), gateway.ErrReplyTooLarge)
	})
}
