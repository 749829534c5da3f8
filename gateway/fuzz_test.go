package gateway

// Fuzz targets for everything that parses what a server or a user hands the
// client. `go test` runs their seed corpora (the f.Add calls below); `make fuzz`
// runs each for a while. Each asserts properties of the result, not only that
// nothing panicked.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzReplyError: any reply body, with any status, becomes a *Error whose text
// names the call, that matches at most one sentinel of the taxonomy, and whose
// stage is one decide knows.
func FuzzReplyError(f *testing.F) {
	for _, seed := range []struct {
		status int
		body   string
	}{
		{400, `{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}`},
		{503, `{"code":14,"message":"etcdserver: no leader"}`},
		{503, `{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}`},
		{500, `{"code":2,"message":"rpc error: code = Unavailable desc = etcdserver: leader changed"}`},
		{401, `{"code":16,"message":"etcdserver: invalid auth token"}`},
		{502, `<html><body>Bad Gateway</body></html>`},
		{404, `404 page not found`},
		{200, ``},
		{400, `{"error":{`},
		{400, `{"code":"x"}`},
		{0, `null`},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	sentinels := []error{ErrCompacted, ErrFutureRevision, ErrLeaseNotFound, ErrLeaseExists, ErrNoLeader,
		ErrTimeout, ErrUnavailable, ErrRequestTooLarge, ErrTooManyOps, ErrDuplicateKey, ErrNoSpace,
		ErrPermissionDenied, ErrInvalidAuthToken, ErrAuthOldRevision, ErrAuthFailed, ErrAuthNotEnabled,
		ErrEmptyKey, ErrMemberNotFound, ErrLearnerNotReady, ErrNotLeader, ErrUnimplemented,
		ErrMalformedResponse, ErrAuthRequired}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := replyError("kv/range", "http://127.0.0.1:1", status, body)
		if e == nil {
			t.Fatal("no error")
		}
		msg := e.Error()
		if !strings.HasPrefix(msg, "gateway: kv/range ") {
			t.Fatalf("message %q does not name the call", msg)
		}
		matched := 0
		for _, s := range sentinels {
			if errors.Is(e, s) {
				matched++
			}
		}
		if matched > 1 {
			t.Fatalf("%q matches %d sentinels", msg, matched)
		}
		if int(e.stage) >= len(stageNames) {
			t.Fatalf("stage %d", e.stage)
		}
		if errors.Is(e, ErrOutcomeUnknown) {
			t.Fatal("a reply is never an unknown outcome by itself")
		}
	})
}

// chunked reads data in pieces of the given sizes (cycled), as a network does.
type chunked struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.i%len(c.sizes)]) + 1
		c.i++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// FuzzStreamDecoder: a stream split anywhere, concatenated, truncated or mixed
// with errors decodes to results, then ends with io.EOF or one typed *Error;
// never a panic, never an untyped error, never a result after an error; and the
// same bytes give the same results however they are split.
func FuzzStreamDecoder(f *testing.F) {
	ev := `{"result":{"header":{"revision":"11"},"events":[{"kv":{"key":"aw==","mod_revision":"11"}}]}}`
	for _, seed := range []string{
		`{"result":{"header":{"revision":"10"},"created":true}}` + ev,
		ev + "\n" + ev + "\r\n" + ev,
		ev + ev[:len(ev)/2],
		ev + `{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader"}}`,
		ev + `{"error":{"code":14,"message":"etcdserver: no leader"}}`,
		`{"result":null}`,
		`{}`,
		`[1,2]`,
		`{"result":{"header":{"revision":"x"}}}`,
		"",
		"   ",
	} {
		f.Add([]byte(seed), []byte{0, 3, 200}, int64(-1))
		f.Add([]byte(seed), []byte{}, int64(64))
	}
	decode := func(data, sizes []byte, max int64) (results []string, end error) {
		d := newStreamDecoder(&chunked{data: data, sizes: sizes}, max, "watch", "e")
		for range 10000 {
			var r wireWatchResponse
			err := d.next(&r)
			if err != nil {
				return results, err
			}
			b, _ := json.Marshal(r)
			results = append(results, string(b))
		}
		return results, errors.New("too many results")
	}
	f.Fuzz(func(t *testing.T, data, sizes []byte, max int64) {
		results, end := decode(data, sizes, max)
		if !errors.Is(end, io.EOF) {
			var e *Error
			if !errors.As(end, &e) {
				t.Fatalf("ended with %v (%T), want io.EOF or a *Error", end, end)
			}
		}
		if max >= 0 {
			return // a bound counts what each read took: it depends on the split
		}
		// The split does not change what is decoded.
		whole, wholeEnd := decode(data, []byte{255}, max)
		if len(whole) != len(results) {
			t.Fatalf("%d results split, %d whole", len(results), len(whole))
		}
		for i := range whole {
			if whole[i] != results[i] {
				t.Fatalf("result %d: %s split, %s whole", i, results[i], whole[i])
			}
		}
		if errors.Is(end, io.EOF) != errors.Is(wholeEnd, io.EOF) {
			t.Fatalf("end %v split, %v whole", end, wholeEnd)
		}
	})
}

// FuzzAPIPathFor: any version string gives one of the three prefixes, and the
// prefix follows the version's major and minor numbers when they can be read.
func FuzzAPIPathFor(f *testing.F) {
	for _, v := range []string{"3.6.16", "3.3.27", "3.2.32", "3.4.23", "2.3.8", "v3.5.0-rc.1", "3.5.9+git", "4.0.0", "", "3", "x.y", "3.-1", " 3.3 "} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		p := APIPathFor(v)
		switch p {
		case "/v3alpha", "/v3beta", "/v3":
		default:
			t.Fatalf("APIPathFor(%q) = %q", v, p)
		}
		major, minor, ok := parseVersion(v)
		if !ok {
			if p != "/v3" {
				t.Fatalf("unreadable %q gives %q, want /v3", v, p)
			}
			return
		}
		want := "/v3"
		switch {
		case major < 3 || (major == 3 && minor <= 2):
			want = "/v3alpha"
		case major == 3 && minor == 3:
			want = "/v3beta"
		}
		if p != want {
			t.Fatalf("APIPathFor(%q) = %q, want %q (%d.%d)", v, p, want, major, minor)
		}
	})
}

// FuzzPrefixEnd: the end of a prefix's range is above every key that starts
// with the prefix and at or below every key above them; a prefix of 0xff bytes
// only (or none) ranges to the end of the keyspace ("\x00").
func FuzzPrefixEnd(f *testing.F) {
	for _, p := range []string{"a", "a/", "\xff", "a\xff", "a\xff\xff", "", "\x00", "z\xfe"} {
		f.Add([]byte(p), []byte("suffix"))
	}
	f.Fuzz(func(t *testing.T, prefix, suffix []byte) {
		end := PrefixEnd(prefix)
		if bytes.Equal(end, []byte{0}) {
			if len(bytes.TrimLeft(prefix, "\xff")) != 0 {
				t.Fatalf("PrefixEnd(%q) = end of keyspace, but the prefix is not all 0xff", prefix)
			}
			return
		}
		key := append(append([]byte{}, prefix...), suffix...)
		if bytes.Compare(key, end) >= 0 {
			t.Fatalf("key %q with prefix %q is not below the end %q", key, prefix, end)
		}
		if bytes.HasPrefix(end, prefix) {
			t.Fatalf("the end %q itself starts with %q", end, prefix)
		}
		if bytes.Compare(end, prefix) <= 0 {
			t.Fatalf("the end %q is not above the prefix %q", end, prefix)
		}
	})
}
