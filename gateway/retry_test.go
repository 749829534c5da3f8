package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
)

// TestDecide is the resend contract as a table: every stage, idempotent or not,
// with the caller's context alive or ended.
func TestDecide(t *testing.T) {
	type row struct{ idem, idemEnded, write, writeEnded verdict }
	want := map[stage]row{
		stageAnswered: {fail, fail, fail, fail},
		stageNotSent:  {resend, fail, resend, fail},
		stageRejected: {fail, fail, fail, fail},
		stageRefused:  {resend, fail, resend, fail},
		stageNoReply:  {resend, fail, outcomeUnknown, outcomeUnknown},
		stageInDoubt:  {resend, fail, outcomeUnknown, outcomeUnknown},
	}
	if len(want) != len(stageNames) {
		t.Fatalf("the table covers %d stages of %d", len(want), len(stageNames))
	}
	for st, w := range want {
		got := row{decide(st, true, false), decide(st, true, true), decide(st, false, false), decide(st, false, true)}
		if got != w {
			t.Errorf("stage %v: (idempotent, idempotent with ctx ended, write, write with ctx ended) = %v, want %v", st, got, w)
		}
	}
}

// TestStages: the stage each kind of failure records where its error is made.
func TestStages(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	read := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	remote := &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}
	reply := func(status int, body string) error { return replyError("kv/put", "e", status, []byte(body)) }
	cases := []struct {
		name string
		err  error
		want stage
	}{
		{"dial refused", transportError("kv/put", "e", fmt.Errorf("post: %w", dial)), stageNotSent},
		{"name not resolved", transportError("kv/put", "e", &net.DNSError{Err: "no such host", Name: "x"}), stageNotSent},
		{"API path not detected", unsentError("kv/put", "e", errors.New("version: refused")), stageNotSent},
		{"API path not detected: certificate refused", unsentError("kv/put", "e", transportError("version", "e", remote)), stageRejected},
		{"server's certificate not trusted", transportError("kv/put", "e", x509.UnknownAuthorityError{}), stageRejected},
		{"our certificate refused", transportError("kv/put", "e", remote), stageRejected},
		{"connection reset", transportError("kv/put", "e", read), stageNoReply},
		{"cut mid-reply", transportError("kv/put", "e", io.ErrUnexpectedEOF), stageNoReply},
		{"ctx ended in flight", transportError("kv/put", "e", context.Canceled), stageNoReply},
		{"no leader", reply(503, `{"code":14,"message":"etcdserver: no leader"}`), stageRefused},
		{"too many requests", reply(503, `{"code":14,"message":"etcdserver: too many requests"}`), stageRefused},
		{"stream refused: no leader", reply(503, `{"error":{"grpc_code":14,"message":"etcdserver: no leader"}}`), stageRefused},
		{"timed out", reply(503, `{"code":14,"message":"etcdserver: request timed out"}`), stageInDoubt},
		{"leader changed", reply(503, `{"code":14,"message":"etcdserver: leader changed"}`), stageInDoubt},
		{"proxy's bad gateway", reply(502, `<html>bad gateway</html>`), stageInDoubt},
		{"mid-stream no leader", (&streamError{Code: CodeUnavailable, Message: "etcdserver: no leader"}).toError("watch", "e"), stageRefused},
		{"mid-stream unavailable", (&streamError{GRPCCode: CodeUnavailable, Message: "etcdserver: server stopped"}).toError("watch", "e"), stageInDoubt},
		{"permission denied", reply(403, `{"code":7,"message":"etcdserver: permission denied"}`), stageAnswered},
		{"empty key", reply(400, `{"code":3,"message":"etcdserver: key is not provided"}`), stageAnswered},
		{"proxy's page", reply(500, `oops`), stageAnswered},
		{"client closed", localError("kv/put", ErrClosed, ""), stageAnswered},
		{"not a *Error", errors.New("caller's own"), stageAnswered},
		{"compacted", &CompactedError{Revision: 3, CompactRevision: 5}, stageAnswered},
	}
	for _, tc := range cases {
		if got := stageOf(tc.err); got != tc.want {
			t.Errorf("%s: stage %v, want %v (%v)", tc.name, got, tc.want, tc.err)
		}
	}
}
