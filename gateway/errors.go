package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error the client returns that came from the server or the
// transport is a *Error; errors.Is(err, ErrX) tells what it means.
var (
	// ErrCompacted: the revision asked for has been compacted away.
	ErrCompacted = errors.New("gateway: required revision has been compacted")
	// ErrFutureRevision: the revision asked for is newer than the store's.
	ErrFutureRevision = errors.New("gateway: required revision is a future revision")
	// ErrLeaseNotFound: the lease does not exist (expired or revoked).
	ErrLeaseNotFound = errors.New("gateway: lease not found")
	// ErrLeaseExists: a lease with the requested ID exists already.
	ErrLeaseExists = errors.New("gateway: lease already exists")
	// ErrNoLeader: the member has no Raft leader (partitioned or electing).
	// (election.ErrNoLeader is an election without candidates.)
	ErrNoLeader = errors.New("gateway: no leader")
	// ErrTimeout: the server timed out processing the request. The request may
	// still have been applied.
	ErrTimeout = errors.New("gateway: request timed out")
	// ErrUnavailable: the server reported itself unavailable (gRPC code 14).
	ErrUnavailable = errors.New("gateway: server unavailable")
	// ErrRequestTooLarge: the request exceeds the server's --max-request-bytes.
	// The client refuses such requests before sending them.
	ErrRequestTooLarge = errors.New("gateway: request too large")
	// ErrTooManyOps: a transaction has more operations than --max-txn-ops.
	ErrTooManyOps = errors.New("gateway: too many operations in txn")
	// ErrDuplicateKey: a transaction modifies the same key twice.
	ErrDuplicateKey = errors.New("gateway: duplicate key in txn")
	// ErrNoSpace: the cluster's NOSPACE alarm is raised; writes are refused.
	ErrNoSpace = errors.New("gateway: database space exceeded")
	// ErrPermissionDenied: the user lacks permission for the request.
	ErrPermissionDenied = errors.New("gateway: permission denied")
	// ErrInvalidAuthToken: the auth token is invalid or expired.
	ErrInvalidAuthToken = errors.New("gateway: invalid auth token")
	// ErrAuthOldRevision: the token was issued before an auth store change.
	ErrAuthOldRevision = errors.New("gateway: auth store revision is old")
	// ErrAuthFailed: wrong user name or password.
	ErrAuthFailed = errors.New("gateway: authentication failed")
	// ErrAuthNotEnabled: an auth call was made while authentication is disabled.
	ErrAuthNotEnabled = errors.New("gateway: authentication is not enabled")
	// ErrUserExists: UserAdd of a user that exists already.
	ErrUserExists = errors.New("gateway: user already exists")
	// ErrUserNotFound: no user has that name.
	ErrUserNotFound = errors.New("gateway: user not found")
	// ErrRoleExists: RoleAdd of a role that exists already.
	ErrRoleExists = errors.New("gateway: role already exists")
	// ErrRoleNotFound: no role has that name.
	ErrRoleNotFound = errors.New("gateway: role not found")
	// ErrRoleNotGranted: UserRevokeRole of a role the user does not have.
	ErrRoleNotGranted = errors.New("gateway: role not granted to the user")
	// ErrPermissionNotGranted: RoleRevokePermission of a permission the role
	// does not have.
	ErrPermissionNotGranted = errors.New("gateway: permission not granted to the role")
	// ErrEmptyKey: a key is required and was empty.
	ErrEmptyKey = errors.New("gateway: key is empty")
	// ErrKeyNotFound: the key does not exist (GetOne).
	ErrKeyNotFound = errors.New("gateway: key not found")
	// ErrMemberNotFound: no member has that ID.
	ErrMemberNotFound = errors.New("gateway: member not found")
	// ErrLearnerNotReady: a learner cannot be promoted before it caught up.
	ErrLearnerNotReady = errors.New("gateway: learner not ready")
	// ErrNotLeader: the request must be sent to the leader (MoveLeader).
	ErrNotLeader = errors.New("gateway: not leader")
	// ErrWatchCanceled: the server cancelled a watch for a reason other than
	// compaction (for example a permission change); the *Error carries the reason.
	ErrWatchCanceled = errors.New("gateway: watch canceled by server")
	// ErrUnimplemented: the server does not serve this call (an older version,
	// or a gateway that lacks the path: etcd 3.4 has no /maintenance/hashkv).
	ErrUnimplemented = errors.New("gateway: not implemented by the server")
	// ErrReplyTooLarge: a reply, or one message of a stream, is larger than
	// Config.MaxReplyBytes; the rest of it was not read.
	ErrReplyTooLarge = errors.New("gateway: reply too large")
	// ErrMalformedResponse: the reply could not be understood (not JSON, a cut
	// stream, an unexpected shape).
	ErrMalformedResponse = errors.New("gateway: malformed response")
	// ErrOutcomeUnknown: a request that changes state may or may not have been
	// applied: the connection broke after it was sent, or the server gave up
	// waiting for it. It was not sent again, since applying it twice could be
	// wrong; read the state to learn what happened.
	ErrOutcomeUnknown = errors.New("gateway: outcome unknown")
	// ErrAuthRequired: the cluster has auth enabled and the client has no
	// credentials (Config.Username).
	ErrAuthRequired = errors.New("gateway: authentication required")
	// ErrInvalidConfig: New was given a Config it cannot use (an endpoint
	// that is not an http or https URL, a Password without a Username, TLS
	// files that cannot be read or do not match), or WithEndpoint a URL.
	ErrInvalidConfig = errors.New("gateway: invalid configuration")
	// ErrNoClientURLs: Sync found no client URL in the member list; the
	// endpoints stay as they were.
	ErrNoClientURLs = errors.New("gateway: the member list names no client URL")
	// ErrClosed: the Client was closed. (lease.ErrClosed is a lease ended by
	// Close or Orphan.)
	ErrClosed = errors.New("gateway: client closed")
)

// Code is a gRPC status code, as the gateway reports it in its error replies.
type Code int

// The gRPC codes etcd's gateway reports.
const (
	CodeOK                 Code = 0
	CodeCanceled           Code = 1
	CodeUnknown            Code = 2
	CodeInvalidArgument    Code = 3
	CodeDeadlineExceeded   Code = 4
	CodeNotFound           Code = 5
	CodeAlreadyExists      Code = 6
	CodePermissionDenied   Code = 7
	CodeResourceExhausted  Code = 8
	CodeFailedPrecondition Code = 9
	CodeAborted            Code = 10
	CodeOutOfRange         Code = 11
	CodeUnimplemented      Code = 12
	CodeInternal           Code = 13
	CodeUnavailable        Code = 14
	CodeDataLoss           Code = 15
	CodeUnauthenticated    Code = 16
)

var codeNames = [...]string{"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded",
	"NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
	"Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

// String returns the code's gRPC name ("Unavailable").
func (c Code) String() string {
	if c >= 0 && int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Error is what every failed call returns (possibly wrapped): the operation, the
// endpoint it went to, and what the server or the transport said.
//
// errors.Is(err, ErrX) matches the sentinel the server's reply maps to, and
// errors.Is/As also see the transport error underneath (a *net.OpError,
// context.Canceled, context.DeadlineExceeded).
type Error struct {
	// Op is the API call, such as "kv/range" or "watch".
	Op string
	// Endpoint is the base URL of the member the request went to; empty when
	// the request was refused before it was sent.
	Endpoint string
	// Status is the HTTP status of the reply; 0 when there was no reply or the
	// error arrived inside a stream.
	Status int
	// Code is the gRPC code the server reported; CodeOK when it reported none.
	Code Code
	// Message is the server's message, or a description of what went wrong.
	Message string
	// Err is the underlying cause (a transport or decoding error), or nil.
	Err error

	kind  error // the sentinel this error maps to, or nil
	stage stage // how far the attempt got; decides whether it is sent again (retry.go)
	// unknown marks a state change that the resend contract gave up on: it may
	// or may not have been applied (decide's outcomeUnknown verdict).
	unknown bool
}

// Error says what failed, where, and what the server or the transport said.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("gateway: ")
	b.WriteString(e.Op)
	if e.Endpoint != "" {
		b.WriteString(" ")
		b.WriteString(e.Endpoint)
	}
	b.WriteString(": ")
	switch {
	case e.Message != "" && e.Err != nil:
		b.WriteString(e.Message)
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	case e.Message != "":
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	case e.kind != nil:
		b.WriteString(e.kind.Error())
	}
	if e.unknown {
		b.WriteString(" (outcome unknown: it may have been applied)")
	}
	if e.Code != CodeOK || e.Status != 0 {
		b.WriteString(" (")
		if e.Code != CodeOK {
			b.WriteString("code ")
			b.WriteString(e.Code.String())
		}
		if e.Status != 0 {
			if e.Code != CodeOK {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "HTTP %d", e.Status)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the sentinels the error matches (the server's, and
// ErrOutcomeUnknown) and the underlying cause, whichever are set.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 3)
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.unknown {
		errs = append(errs, ErrOutcomeUnknown)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// CompactedError is returned when a watch or a read asks for history that
// compaction has removed. errors.Is(err, ErrCompacted) is true for it.
type CompactedError struct {
	// Revision is the revision the caller asked for (a watch's resume point).
	Revision int64
	// CompactRevision is the oldest revision still available.
	CompactRevision int64
	// Err is the *Error that carried it, if any.
	Err error
}

// Error says which revision is gone and which is the oldest left.
func (e *CompactedError) Error() string {
	return fmt.Sprintf("gateway: revision %d has been compacted (compact revision %d)", e.Revision, e.CompactRevision)
}

// Is makes errors.Is(err, ErrCompacted) true.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// Unwrap returns the *Error that carried the compaction, if any.
func (e *CompactedError) Unwrap() error { return e.Err }

// transportError wraps a failure to get a reply at all.
func transportError(op, endpoint string, err error) *Error {
	e := &Error{Op: op, Endpoint: endpoint, Err: err, stage: stageNoReply}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return e
	}
	e.kind = ErrUnavailable
	e.stage = transportStage(err)
	return e
}

// unsentError marks err (from detecting the API path, say) as having happened
// before the request was sent. A TLS rejection stays one: no member will accept
// the request either.
func unsentError(op, endpoint string, err error) *Error {
	if e := asError(err); e != nil {
		c := *e
		if c.stage != stageRejected {
			c.stage = stageNotSent
		}
		return &c
	}
	return &Error{Op: op, Endpoint: endpoint, Err: err, stage: stageNotSent}
}

// markOutcomeUnknown marks a state change whose outcome is unknown.
func markOutcomeUnknown(err error) error {
	e := asError(err)
	if e == nil {
		return err
	}
	c := *e
	c.unknown = true
	return &c
}

// localError is the client's own refusal, before anything was sent (a closed
// client, a request over the size limit, an empty key). It stands: sending the
// same request elsewhere would meet the same refusal.
func localError(op string, kind error, msg string) *Error {
	return &Error{Op: op, Message: msg, kind: kind}
}
