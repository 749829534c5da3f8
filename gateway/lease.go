package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// LeaseGrantResponse is the result of Grant.
type LeaseGrantResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// ID is the lease's ID.
	ID int64 `json:"ID,string"`
	// TTL is the lease's time to live in seconds, as the server chose it.
	TTL int64 `json:"TTL,string"`
}

// LeaseKeepAliveResponse is the result of KeepAliveOnce.
type LeaseKeepAliveResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// ID is the lease's ID.
	// ID is the lease's ID.
	ID int64 `json:"ID,string"`
	// TTL is the lease's renewed time to live in seconds.
	TTL int64 `json:"TTL,string"`
}

// LeaseTimeToLiveResponse is the result of TimeToLive.
type LeaseTimeToLiveResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// ID is the lease's ID.
	ID int64 `json:"ID,string"`
	// TTL is the remaining time to live in seconds.
	TTL int64 `json:"TTL,string"`
	// GrantedTTL is the TTL the lease was granted with.
	GrantedTTL int64 `json:"grantedTTL,string"`
	// Keys are the keys attached to the lease, with WithAttachedKeys.
	Keys [][]byte `json:"keys"`
}

// LeaseStatus names one lease in a Leases listing.
type LeaseStatus struct {
	// ID is the lease's ID.
	ID int64 `json:"ID,string"`
}

// LeaseLeasesResponse is the result of Leases.
type LeaseLeasesResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Leases are every lease the cluster holds.
	Leases []LeaseStatus `json:"leases"`
}

// LeaseRevokeResponse is the result of Revoke.
type LeaseRevokeResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
}

type leaseIDRequest struct {
	ID   int64 `json:"ID"`
	Keys bool  `json:"keys,omitempty"`
}

// Grant creates a lease that expires ttl seconds after its last keepalive.
// WithLease(id) asks for a specific ID (ErrLeaseExists if it is taken); otherwise
// the server picks one.
func (c *Client) Grant(ctx context.Context, ttl int64, opts ...Option) (*LeaseGrantResponse, error) {
	var o Op
	for _, opt := range opts {
		opt(&o)
	}
	req := struct {
		TTL int64 `json:"TTL"`
		ID  int64 `json:"ID,omitempty"`
	}{ttl, o.lease}
	return call[LeaseGrantResponse](ctx, c, rpcGrant, 0, req)
}

// Revoke ends a lease and deletes every key attached to it. It returns an error
// matching ErrLeaseNotFound when the lease is gone already.
func (c *Client) Revoke(ctx context.Context, id int64) (*LeaseRevokeResponse, error) {
	return call[LeaseRevokeResponse](ctx, c, rpcRevoke, 0, leaseIDRequest{ID: id})
}

// TimeToLive reports a lease's remaining TTL; WithAttachedKeys lists its keys. For
// a lease that does not exist it returns an error matching ErrLeaseNotFound (the
// server itself answers TTL -1).
func (c *Client) TimeToLive(ctx context.Context, id int64, opts ...Option) (*LeaseTimeToLiveResponse, error) {
	var o Op
	for _, opt := range opts {
		opt(&o)
	}
	resp := new(LeaseTimeToLiveResponse)
	if err := c.unary(ctx, rpcTimeToLive, 0, leaseIDRequest{ID: id, Keys: o.attachedKeys}, resp); err != nil {
		return nil, err
	}
	if resp.TTL == -1 {
		return nil, localError("lease/timetolive", ErrLeaseNotFound, fmt.Sprintf("lease %x not found (TTL -1)", id))
	}
	for i := range resp.Keys {
		resp.Keys[i] = c.strip(resp.Keys[i])
	}
	return resp, nil
}

// Leases lists the IDs of all leases.
func (c *Client) Leases(ctx context.Context) (*LeaseLeasesResponse, error) {
	return call[LeaseLeasesResponse](ctx, c, rpcLeases, 0, struct{}{})
}

// KeepAliveOnce renews a lease once and returns its new TTL. For a lease that no
// longer exists it returns an error matching ErrLeaseNotFound: the server answers
// such a keepalive with TTL 0. Package lease keeps leases alive in the background.
func (c *Client) KeepAliveOnce(ctx context.Context, id int64) (*LeaseKeepAliveResponse, error) {
	op := rpcKeepAlive.path
	body, err := json.Marshal(leaseIDRequest{ID: id})
	if err != nil {
		return nil, &Error{Op: op, Err: err}
	}
	ctx, cancel, err := c.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	defer cancel()
	// The keepalive is a stream on the server; one request message gives one
	// result, and the end of the request body ends the stream.
	var resp *LeaseKeepAliveResponse
	err = c.stream(ctx, rpcKeepAlive, body, func(d *streamDecoder) error {
		resp = new(LeaseKeepAliveResponse)
		err := d.next(resp)
		if errors.Is(err, io.EOF) {
			// An empty reply: some auth failures end this way (etcd issues
			// 15256, 20332). Nothing says the lease is gone.
			return &Error{Op: op, Endpoint: d.endpoint, Status: http.StatusOK,
				Message: "keepalive stream ended without a result", Err: io.ErrUnexpectedEOF, kind: ErrUnavailable, stage: stageInDoubt}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if resp.TTL <= 0 {
		return nil, localError(op, ErrLeaseNotFound, fmt.Sprintf("lease %x not found (keepalive TTL 0)", id))
	}
	return resp, nil
}
