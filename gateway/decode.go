package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// serverMessages maps etcd's error messages (etcd's rpctypes, stable across
// versions) to sentinels. This is the one place where server text is matched: the
// gateway gives nothing but the gRPC code and the message, and the code alone is
// ambiguous (InvalidArgument is used for a dozen different errors).
var serverMessages = map[string]error{
	"etcdserver: user name is empty":                                                   ErrAuthRequired,
	"etcdserver: mvcc: required revision has been compacted":                           ErrCompacted,
	"etcdserver: mvcc: required revision is a future revision":                         ErrFutureRevision,
	"etcdserver: requested lease not found":                                            ErrLeaseNotFound,
	"etcdserver: lease already exists":                                                 ErrLeaseExists,
	"etcdserver: no leader":                                                            ErrNoLeader,
	"etcdserver: request is too large":                                                 ErrRequestTooLarge,
	"etcdserver: too many operations in txn request":                                   ErrTooManyOps,
	"etcdserver: duplicate key given in txn request":                                   ErrDuplicateKey,
	"etcdserver: mvcc: database space exceeded":                                        ErrNoSpace,
	"etcdserver: permission denied":                                                    ErrPermissionDenied,
	"etcdserver: invalid auth token":                                                   ErrInvalidAuthToken,
	"etcdserver: revision of auth store is old":                                        ErrAuthOldRevision,
	"etcdserver: authentication failed, invalid user ID or password":                   ErrAuthFailed,
	"etcdserver: authentication is not enabled":                                        ErrAuthNotEnabled,
	"etcdserver: key is not provided":                                                  ErrEmptyKey,
	"etcdserver: key not found":                                                        ErrKeyNotFound,
	"etcdserver: user name already exists":                                             ErrUserExists,
	"etcdserver: user name not found":                                                  ErrUserNotFound,
	"etcdserver: role name already exists":                                             ErrRoleExists,
	"etcdserver: role name not found":                                                  ErrRoleNotFound,
	"etcdserver: role is not granted to the user":                                      ErrRoleNotGranted,
	"etcdserver: permission is not granted to the role":                                ErrPermissionNotGranted,
	"etcdserver: member not found":                                                     ErrMemberNotFound,
	"etcdserver: can only promote a learner member which is in sync with leader":       ErrLearnerNotReady,
	"etcdserver: not leader":                                                           ErrNotLeader,
	"etcdserver: leader changed":                                                       ErrUnavailable,
	"etcdserver: server stopped":                                                       ErrUnavailable,
	"etcdserver: too many requests":                                                    ErrUnavailable,
	"etcdserver: unhealthy cluster":                                                    ErrUnavailable,
	"etcdserver: corrupt cluster":                                                      ErrUnavailable,
	"etcdserver: request timed out":                                                    ErrTimeout,
	"etcdserver: request timed out, possibly due to previous leader failure":           ErrTimeout,
	"etcdserver: request timed out, possibly due to connection lost":                   ErrTimeout,
	"etcdserver: request timed out, waiting for the applied index took too long":       ErrTimeout,
	"etcdserver: request timed out, waiting for the read index response took too long": ErrTimeout,
}

// classify returns the sentinel for a server error.
func classify(code Code, msg string) error {
	if c, desc, ok := grpcMessage(msg); ok {
		code, msg = c, desc
	}
	if k, ok := serverMessages[msg]; ok {
		return k
	}
	switch {
	case strings.HasPrefix(msg, "etcdserver: request timed out"):
		return ErrTimeout
	case strings.Contains(msg, "auth token"):
		return ErrInvalidAuthToken
	case strings.HasPrefix(msg, "grpc: received message larger than max"):
		// A request past the gateway's gRPC limit (--max-request-bytes plus
		// 512 KiB) never reaches etcd's own check.
		return ErrRequestTooLarge
	}
	switch code {
	case CodeUnimplemented:
		return ErrUnimplemented
	case CodeUnavailable:
		return ErrUnavailable
	case CodeDeadlineExceeded:
		return ErrTimeout
	case CodePermissionDenied:
		return ErrPermissionDenied
	case CodeUnauthenticated:
		return ErrInvalidAuthToken
	}
	return nil
}

// grpcMessage unpacks a message in gRPC's own format, "rpc error: code = X desc =
// Y", which etcd passes through in some places (a watch's cancel_reason).
func grpcMessage(msg string) (Code, string, bool) {
	const head, sep = "rpc error: code = ", " desc = "
	rest, ok := strings.CutPrefix(msg, head)
	if !ok {
		return 0, "", false
	}
	name, desc, ok := strings.Cut(rest, sep)
	if !ok {
		return 0, "", false
	}
	for i, n := range codeNames {
		if n == name {
			return Code(i), desc, true
		}
	}
	return CodeUnknown, desc, true
}

// wireError holds both unary error shapes: 3.4/3.5 {"error","message","code"} and
// 3.6+ {"code","message"}.
type wireError struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Code    Code            `json:"code"`
}

// streamError holds both mid-stream error shapes: 3.4/3.5 {"grpc_code","http_code",
// "message","http_status"} and 3.6+ {"code","message"}.
type streamError struct {
	GRPCCode Code   `json:"grpc_code"`
	Code     Code   `json:"code"`
	HTTPCode int    `json:"http_code"`
	Message  string `json:"message"`
}

func (s *streamError) toError(op, endpoint string) *Error {
	code := s.Code
	if code == CodeOK {
		code = s.GRPCCode
	}
	kind := classify(code, s.Message)
	return &Error{Op: op, Endpoint: endpoint, Code: code, Message: s.Message, kind: kind, stage: replyStage(kind, s.Message)}
}

// replyError turns a non-200 reply body into an *Error.
func replyError(op, endpoint string, status int, body []byte) *Error {
	e := &Error{Op: op, Endpoint: endpoint, Status: status}
	var w wireError
	err := json.Unmarshal(body, &w)
	if err == nil && w.Message == "" && w.Code == CodeOK && len(w.Error) > 0 && w.Error[0] == '{' {
		// A streaming call refused before its stream began: a real HTTP status
		// with the stream's error shape, {"error":{"code":…,"message":…}}.
		var se streamError
		if json.Unmarshal(w.Error, &se) == nil && se.Message != "" {
			se2 := se.toError(op, endpoint)
			se2.Status = status
			return se2
		}
	}
	if err != nil || (w.Message == "" && w.Code == CodeOK) {
		// Not etcd's JSON: a proxy's page, an empty reply, a plain-text error.
		e.Message = "unexpected reply: " + snippet(body)
		switch status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			e.kind = ErrUnavailable
		case http.StatusNotFound, http.StatusNotImplemented, http.StatusMethodNotAllowed:
			e.kind = ErrUnimplemented
		default:
			e.kind = ErrMalformedResponse
		}
		e.stage = replyStage(e.kind, "")
		return e
	}
	e.Code, e.Message = w.Code, w.Message
	if e.Message == "" && len(w.Error) > 0 {
		var s string
		if json.Unmarshal(w.Error, &s) == nil {
			e.Message = s
		}
	}
	e.kind = classify(e.Code, e.Message)
	e.stage = replyStage(e.kind, e.Message)
	return e
}

func snippet(b []byte) string {
	const max = 120
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty body)"
	}
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}
