package gateway

import (
	"context"
	"errors"
)

// Member is one member of the cluster.
type Member struct {
	// ID is the member's ID.
	ID uint64 `json:"ID,string"`
	// Name is the member's name; empty for a member added but not started.
	Name string `json:"name"`
	// PeerURLs are the URLs other members reach it on.
	PeerURLs []string `json:"peerURLs"`
	// ClientURLs are the URLs clients reach it on (its gateway endpoints).
	ClientURLs []string `json:"clientURLs"`
	// IsLearner reports a learner: a member that replicates but does not vote.
	IsLearner bool `json:"isLearner"`
}

// MemberListResponse is the result of MemberList.
type MemberListResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Members are the cluster's members.
	Members []Member `json:"members"`
}

// MemberResponse is the result of MemberAdd, MemberRemove, MemberUpdate and
// MemberPromote: the changed member, if any, and the members afterwards.
type MemberResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Member is the member added or changed; nil for MemberRemove.
	Member *Member `json:"member"`
	// Members are the cluster's members after the change.
	Members []Member `json:"members"`
}

// StatusResponse is what a member says of itself.
type StatusResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Version is the member's etcd version.
	Version string `json:"version"`
	// DbSize is the size of its database file in bytes.
	DbSize int64 `json:"dbSize,string"`
	// DbSizeInUse is the part of DbSize in use; defragmenting frees the rest.
	DbSizeInUse int64 `json:"dbSizeInUse,string"`
	// Leader is the ID of the member it takes for the leader; 0 when it knows none.
	Leader uint64 `json:"leader,string"`
	// RaftIndex is its Raft log's last index.
	RaftIndex uint64 `json:"raftIndex,string"`
	// RaftTerm is its Raft term.
	RaftTerm uint64 `json:"raftTerm,string"`
	// RaftAppliedIndex is the last log index it has applied.
	RaftAppliedIndex uint64 `json:"raftAppliedIndex,string"`
	// Errors are the alarms and errors it reports ("NOSPACE").
	Errors []string `json:"errors"`
	// IsLearner reports that the member is a learner.
	IsLearner bool `json:"isLearner"`
}

// AlarmType is the kind of an alarm.
type AlarmType int

// Alarm types.
const (
	AlarmNone AlarmType = iota
	AlarmNoSpace
	AlarmCorrupt
)

// UnmarshalJSON accepts the enum's name or number.
func (a *AlarmType) UnmarshalJSON(b []byte) error {
	n, err := unmarshalEnum(b, map[string]int{"NONE": 0, "NOSPACE": 1, "CORRUPT": 2})
	*a = AlarmType(n)
	return err
}

// AlarmMember is an alarm raised by a member.
type AlarmMember struct {
	// MemberID is the ID of the member that raised the alarm.
	MemberID uint64 `json:"memberID,string"`
	// Alarm is what was raised.
	Alarm AlarmType `json:"alarm"`
}

// AlarmResponse is the result of AlarmList and AlarmDisarm.
type AlarmResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Alarms are the alarms raised, or after AlarmDisarm the ones disarmed.
	Alarms []AlarmMember `json:"alarms"`
}

// HashKVResponse is the result of HashKV.
type HashKVResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Hash is the hash of the key-value store up to HashRevision.
	Hash uint32 `json:"hash"`
	// CompactRevision is the store's compaction revision when it was hashed.
	CompactRevision int64 `json:"compact_revision,string"`
	// HashRevision is the revision the hash covers (members agree at the same one).
	HashRevision int64 `json:"hash_revision,string"`
}

// MaintenanceResponse is the result of Defragment and MoveLeader.
type MaintenanceResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
}

// MemberList lists the cluster's members (etcd3gw's members()).
func (c *Client) MemberList(ctx context.Context) (*MemberListResponse, error) {
	return call[MemberListResponse](ctx, c, rpcMemberList, 0, struct{}{})
}

// MemberAdd adds a member with the given peer URLs, as a learner if isLearner.
func (c *Client) MemberAdd(ctx context.Context, peerURLs []string, isLearner bool) (*MemberResponse, error) {
	req := struct {
		PeerURLs  []string `json:"peerURLs"`
		IsLearner bool     `json:"isLearner,omitempty"`
	}{peerURLs, isLearner}
	return call[MemberResponse](ctx, c, rpcMemberAdd, 0, req)
}

// MemberRemove removes the member with the given ID.
func (c *Client) MemberRemove(ctx context.Context, id uint64) (*MemberResponse, error) {
	req := struct {
		ID uint64 `json:"ID,string"`
	}{id}
	return call[MemberResponse](ctx, c, rpcMemberRemove, 0, req)
}

// MemberUpdate changes a member's peer URLs.
func (c *Client) MemberUpdate(ctx context.Context, id uint64, peerURLs []string) (*MemberResponse, error) {
	req := struct {
		ID       uint64   `json:"ID,string"`
		PeerURLs []string `json:"peerURLs"`
	}{id, peerURLs}
	return call[MemberResponse](ctx, c, rpcMemberUpdate, 0, req)
}

// MemberPromote makes a learner a voting member. It fails with ErrLearnerNotReady
// until the learner has caught up with the leader.
func (c *Client) MemberPromote(ctx context.Context, id uint64) (*MemberResponse, error) {
	req := struct {
		ID uint64 `json:"ID,string"`
	}{id}
	return call[MemberResponse](ctx, c, rpcMemberPromo, 0, req)
}

// Status asks a member for its status (etcd3gw's status()): the current one,
// or with WithEndpoint that one.
func (c *Client) Status(ctx context.Context, opts ...Option) (*StatusResponse, error) {
	return memberCall[StatusResponse](ctx, c, rpcStatus, opts, struct{}{})
}

// memberCall is call for the calls that may target one member (WithEndpoint).
func memberCall[T any](ctx context.Context, c *Client, r rpc, opts []Option, req any) (*T, error) {
	r, err := c.pinned(r, callOpts(opts))
	if err != nil {
		return nil, err
	}
	return call[T](ctx, c, r, 0, req)
}

// AlarmList lists the alarms raised in the cluster, as the current member (or
// with WithEndpoint that one) knows them.
func (c *Client) AlarmList(ctx context.Context, opts ...Option) (*AlarmResponse, error) {
	req := struct {
		Action int `json:"action"`
	}{0} // GET
	return memberCall[AlarmResponse](ctx, c, rpcAlarm, opts, req)
}

// AlarmDisarm clears an alarm. A zero memberID and AlarmNone clear every alarm.
func (c *Client) AlarmDisarm(ctx context.Context, memberID uint64, alarm AlarmType) (*AlarmResponse, error) {
	req := struct {
		Action   int       `json:"action"`
		MemberID uint64    `json:"memberID,string"`
		Alarm    AlarmType `json:"alarm"`
	}{2, memberID, alarm} // DEACTIVATE
	return call[AlarmResponse](ctx, c, rpcAlarm, 0, req)
}

// Defragment defragments a member's backend (the current one, or with
// WithEndpoint that one), releasing the space that compaction freed. It blocks
// the member while it runs: defragment the members one at a time.
func (c *Client) Defragment(ctx context.Context, opts ...Option) (*MaintenanceResponse, error) {
	return memberCall[MaintenanceResponse](ctx, c, rpcDefragment, opts, struct{}{})
}

// HashKV returns the hash of a member's key-value store up to rev (zero: the
// latest): the current member's, or with WithEndpoint that one's. Members
// whose hashes differ at the same HashRevision have diverged.
func (c *Client) HashKV(ctx context.Context, rev int64, opts ...Option) (*HashKVResponse, error) {
	req := struct {
		Revision int64 `json:"revision,omitempty"`
	}{rev}
	return memberCall[HashKVResponse](ctx, c, rpcHashKV, opts, req)
}

// MoveLeader hands leadership to the member with ID target. It must be sent to the
// current leader (ErrNotLeader otherwise): pass WithEndpoint with the leader's
// URL.
func (c *Client) MoveLeader(ctx context.Context, target uint64, opts ...Option) (*MaintenanceResponse, error) {
	req := struct {
		TargetID uint64 `json:"targetID,string"`
	}{target}
	return memberCall[MaintenanceResponse](ctx, c, rpcMoveLeader, opts, req)
}

// Health checks a member as `etcdctl endpoint health` does: the current one, or
// with WithEndpoint that one. The member must answer a linearizable read, which
// needs it to have a leader and the leader a quorum. It returns nil when the
// member is healthy, and otherwise the error that says why (ErrNoLeader, a
// timeout, a refused connection, ErrPermissionDenied is healthy enough: the
// member answered).
func (c *Client) Health(ctx context.Context, opts ...Option) error {
	_, err := c.Get(ctx, "health", append(opts, WithCountOnly())...)
	if errors.Is(err, ErrPermissionDenied) {
		return nil // it answered, after consensus: a user without read access is no sign of ill health
	}
	return err
}
