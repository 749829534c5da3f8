package gateway_test

// Two facts about etcd's watch endpoint that decide how waits may share
// connections (await.go), pinned against a real server.

import (
	"bufio"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func createRequest(key string) string {
	return `{"create_request":{"key":"` + base64.StdEncoding.EncodeToString([]byte(key)) + `"}}` + "\n"
}

// openWatchStream POSTs to /v3/watch with a request body that stays open: the
// returned writer sends more requests on it. The reply arrives on the channel
// once its headers have.
func openWatchStream(t *testing.T, hc *http.Client, url string) (*io.PipeWriter, chan *http.Response) {
	t.Helper()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	req, err := http.NewRequestWithContext(tu.Ctx(t), http.MethodPost, url+"/v3/watch", pr)
	tu.NoErr(t, err)
	got := make(chan *http.Response, 1)
	go func() {
		resp, err := hc.Do(req)
		if err != nil {
			close(got)
			return
		}
		got <- resp
	}()
	return pw, got
}

// TestWatchStreamHTTP1Holds: over plain HTTP/1.1 the gateway sends nothing
// back until the request body ends, so one stream cannot carry a second watch
// created later: a shared stream is one request per watched range.
func TestWatchStreamHTTP1Holds(t *testing.T) {
	cl := etcdtest.Single(t)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	pw, got := openWatchStream(t, &http.Client{Transport: tr}, cl.Endpoints()[0])
	_, err := io.WriteString(pw, createRequest("held"))
	tu.NoErr(t, err)
	select {
	case resp := <-got:
		if resp != nil {
			resp.Body.Close()
		}
		t.Fatal("the gateway replied while the request body was open; shared streams could multiplex over HTTP/1.1")
	case <-time.After(time.Second):
	}
	pw.Close()
	resp := <-got
	if resp == nil {
		t.Fatal("no reply after the body ended")
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	tu.NoErr(t, err)
	if !strings.Contains(line, `"created":true`) {
		t.Fatalf("first message: %s", line)
	}
}

// TestWatchStreamHTTP2Flows: over TLS with HTTP/2 the replies flow while the
// body is open: one stream takes one create request after another, as
// clientv3's gRPC stream does.
func TestWatchStreamHTTP2Flows(t *testing.T) {
	certs := makeCerts(t)
	cl := etcdtest.Start(t, etcdtest.Options{TLS: certs})
	tlsCfg, err := certs.ClientTLS()
	tu.NoErr(t, err)
	tr := &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	pw, got := openWatchStream(t, &http.Client{Transport: tr}, cl.Endpoints()[0])
	_, err = io.WriteString(pw, createRequest("flows/1"))
	tu.NoErr(t, err)
	var resp *http.Response
	select {
	case resp = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no reply over HTTP/2 while the body was open")
	}
	if resp == nil {
		t.Fatal("the watch request failed")
	}
	defer resp.Body.Close()
	tu.Eq(t, "protocol", resp.ProtoMajor, 2)
	r := bufio.NewReader(resp.Body)
	read := func() string {
		t.Helper()
		done := make(chan string, 1)
		go func() { line, _ := r.ReadString('\n'); done <- line }()
		select {
		case line := <-done:
			return line
		case <-time.After(10 * time.Second):
			t.Fatal("no message while the body was open")
			return ""
		}
	}
	if line := read(); !strings.Contains(line, `"created":true`) {
		t.Fatalf("first message: %s", line)
	}
	_, err = io.WriteString(pw, createRequest("flows/2"))
	tu.NoErr(t, err)
	if line := read(); !strings.Contains(line, `"created":true`) || !strings.Contains(line, `"watch_id":"1"`) {
		t.Fatalf("second watch on the same stream: %s", line)
	}
	pw.Close()
}
