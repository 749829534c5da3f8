package gateway

// The resend contract: whether a failed attempt of a call may be sent again, to
// this member or another. Two facts decide it, and this file holds both:
//
//   - how far the attempt got: its stage, recorded on the *Error where the
//     error is made;
//   - whether applying the call twice is the same as applying it once: the rpc
//     table below.
//
// decide maps them to a verdict. TestDecide checks the table and the stage of
// each kind of failure; TestRetryRules checks it end to end against fake members.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// rpc describes one gateway call: its path under the API prefix, and whether
// applying it twice has the same effect as applying it once. Only idempotent
// calls are sent again after they may have reached a server; the others end with
// ErrOutcomeUnknown instead.
type rpc struct {
	path       string
	idempotent bool
	// pin, if set, is the one member the call goes to (WithEndpoint): once,
	// never to another.
	pin *endpoint
}

var (
	rpcRange        = rpc{path: "kv/range", idempotent: true}
	rpcPut          = rpc{path: "kv/put", idempotent: false}
	rpcDelete       = rpc{path: "kv/deleterange", idempotent: false}
	rpcTxn          = rpc{path: "kv/txn", idempotent: false}
	rpcTxnReadOnly  = rpc{path: "kv/txn", idempotent: true}
	rpcCompact      = rpc{path: "kv/compaction", idempotent: false}
	rpcGrant        = rpc{path: "lease/grant", idempotent: false}
	rpcRevoke       = rpc{path: "lease/revoke", idempotent: false}
	rpcTimeToLive   = rpc{path: "lease/timetolive", idempotent: true}
	rpcLeases       = rpc{path: "lease/leases", idempotent: true}
	rpcKeepAlive    = rpc{path: "lease/keepalive", idempotent: true} // renewing twice is renewing
	rpcWatch        = rpc{path: "watch", idempotent: true}
	rpcMemberList   = rpc{path: "cluster/member/list", idempotent: true}
	rpcMemberAdd    = rpc{path: "cluster/member/add", idempotent: false}
	rpcMemberRemove = rpc{path: "cluster/member/remove", idempotent: false}
	rpcMemberUpdate = rpc{path: "cluster/member/update", idempotent: false}
	rpcMemberPromo  = rpc{path: "cluster/member/promote", idempotent: false}
	rpcStatus       = rpc{path: "maintenance/status", idempotent: true}
	rpcAlarm        = rpc{path: "maintenance/alarm", idempotent: true}
	rpcDefragment   = rpc{path: "maintenance/defragment", idempotent: true}
	rpcHashKV       = rpc{path: "maintenance/hashkv", idempotent: true}
	rpcMoveLeader   = rpc{path: "maintenance/transfer-leadership", idempotent: false}
	rpcAuthenticate = rpc{path: "auth/authenticate", idempotent: true}
	rpcAuthEnable   = rpc{path: "auth/enable", idempotent: false}
	rpcAuthDisable  = rpc{path: "auth/disable", idempotent: false}
	rpcAuthStatus   = rpc{path: "auth/status", idempotent: true}
	rpcUserAdd      = rpc{path: "auth/user/add", idempotent: false}
	rpcUserDelete   = rpc{path: "auth/user/delete", idempotent: false}
	rpcUserGrant    = rpc{path: "auth/user/grant", idempotent: false}
	rpcUserRevoke   = rpc{path: "auth/user/revoke", idempotent: false}
	rpcUserPassword = rpc{path: "auth/user/changepw", idempotent: false}
	rpcRoleAdd      = rpc{path: "auth/role/add", idempotent: false}
	rpcRoleDelete   = rpc{path: "auth/role/delete", idempotent: false}
	rpcRoleGrant    = rpc{path: "auth/role/grant", idempotent: false}
	rpcRoleRevoke   = rpc{path: "auth/role/revoke", idempotent: false}
	rpcUserList     = rpc{path: "auth/user/list", idempotent: true}
	rpcUserGet      = rpc{path: "auth/user/get", idempotent: true}
	rpcRoleList     = rpc{path: "auth/role/list", idempotent: true}
	rpcRoleGet      = rpc{path: "auth/role/get", idempotent: true}
)

// stage is how far a failed attempt got. Each *Error records one where it is
// made (transportError, replyError, the stream decoder); the zero value is the
// safe one: the answer stands and nothing is resent.
type stage uint8

const (
	// stageAnswered: the answer stands: a server's reply (a permission denied,
	// a malformed reply, a key not provided), or the client's own refusal to
	// send (a closed client, a request over the size limit).
	stageAnswered stage = iota
	// stageNotSent: the request never reached a server (the connection could
	// not be made, the API path could not be detected).
	stageNotSent
	// stageRejected: the TLS handshake failed over certificates. Nothing was
	// sent, and no other member will think differently of the same
	// certificates.
	stageRejected
	// stageRefused: a server refused the request before applying it (it has no
	// leader, it sheds load).
	stageRefused
	// stageNoReply: the request was, or may have been, sent and no reply came
	// (the connection broke, the caller's context ended in flight).
	stageNoReply
	// stageInDoubt: a server replied that it does not know whether the request
	// was applied (it timed out, the leader changed, it became unavailable).
	stageInDoubt
)

var stageNames = [...]string{"answered", "not sent", "rejected", "refused", "no reply", "in doubt"}

func (s stage) String() string { return stageNames[s] }

// verdict is what a failed attempt means for the call.
type verdict uint8

const (
	fail           verdict = iota // return the error as it is
	resend                        // send it again, to another member if there is one
	outcomeUnknown                // return it marked ErrOutcomeUnknown: it may have been applied
)

var verdictNames = [...]string{"fail", "resend", "outcome unknown"}

func (v verdict) String() string { return verdictNames[v] }

// decide is the resend contract. A request that certainly was not applied (not
// sent, or refused before applying) may be sent again; one that may have been
// applied (no reply, or a reply in doubt) is sent again only if applying it twice
// is harmless, and otherwise ends with ErrOutcomeUnknown. A call whose context
// has ended is never sent again. An answer that stands is returned as it is.
func decide(st stage, idempotent, ctxEnded bool) verdict {
	switch st {
	case stageNotSent, stageRefused:
		if ctxEnded {
			return fail
		}
		return resend
	case stageNoReply, stageInDoubt:
		if !idempotent {
			return outcomeUnknown
		}
		if ctxEnded {
			return fail
		}
		return resend
	}
	return fail // stageAnswered, stageRejected
}

// stageOf is the stage err records; an error that is not a *Error (a
// *CompactedError, a caller's own) is an answer that stands.
func stageOf(err error) stage {
	if e := asError(err); e != nil {
		return e.stage
	}
	return stageAnswered
}

func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// transportStage is the stage of an attempt that got no reply because of err: a
// connection that could not be made was not sent, a handshake over refused
// certificates was rejected, anything else may have been sent.
func transportStage(err error) stage {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case tlsRefused(err):
		return stageRejected
	case errors.As(err, &op) && op.Op == "dial", errors.As(err, &dns):
		return stageNotSent
	}
	return stageNoReply
}

// replyStage is the stage of an attempt the server answered with an error that
// maps to kind: a refusal before applying, a reply in doubt, or one that stands.
// "too many requests" maps to ErrUnavailable like the replies in doubt, but etcd
// sends it before it proposes the request, so it is a refusal.
func replyStage(kind error, msg string) stage {
	switch {
	case kind == ErrNoLeader || msg == "etcdserver: too many requests":
		return stageRefused
	case kind == ErrUnavailable || kind == ErrTimeout:
		return stageInDoubt
	}
	return stageAnswered
}

// onEndpoints runs try against one member after another until one serves it, the
// error is final (see decide), or RetryTimeout has passed; after each pass over every member
// it waits a backoff. Members that fail are put aside for their own backoff.
func (c *Client) onEndpoints(ctx context.Context, r rpc, try func(*endpoint) error) error {
	var tried []*endpoint
	var wait *backoff.ExponentialBackOff
	var deadline time.Time
	var lastErr error
	for {
		ep := c.pick(tried)
		if r.pin != nil {
			ep = r.pin
			if len(tried) > 0 {
				return lastErr
			}
		}
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
		st := stageOf(err)
		if c.certAsked.Load() && (st == stageNotSent || st == stageNoReply || st == stageRejected) {
			e := asError(err)
			return &Error{Op: e.Op, Endpoint: e.Endpoint, Err: e.Err,
				Message: "the server requires a client certificate and none is configured (Config.CertFile, Config.KeyFile)"}
		}
		switch decide(st, r.idempotent, ctx.Err() != nil) {
		case fail:
			return err
		case outcomeUnknown:
			return markOutcomeUnknown(err)
		}
		ep.markFailed()
		c.log.Warn("etcd member failed; trying another", "endpoint", ep.base, "op", r.path, "err", err)
		tried = append(tried, ep)
		lastErr = err
	}
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
