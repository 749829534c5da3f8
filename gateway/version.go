package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Version is what GET /version reports.
type Version struct {
	// Server is the member's etcd version ("3.6.16").
	Server string `json:"etcdserver"`
	// Cluster is the version the cluster runs at ("3.6.0"): the lowest of its members'.
	Cluster string `json:"etcdcluster"`
	// Storage is the version of the member's data on disk (etcd 3.6 and newer).
	Storage string `json:"storage,omitempty"`
}

// Version asks the current member for its version.
func (c *Client) Version(ctx context.Context) (Version, error) {
	if c.isClosed() {
		return Version{}, localError("version", ErrClosed, "")
	}
	return c.version(ctx, c.pick(nil))
}

func (c *Client) version(ctx context.Context, ep *endpoint) (Version, error) {
	var v Version
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.base+"/version", nil)
	if err != nil {
		return v, &Error{Op: "version", Endpoint: ep.base, Err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return v, transportError("version", ep.base, err)
	}
	ep.sawProto(resp.ProtoMajor)
	body, err := c.readBody(resp)
	if err != nil {
		return v, c.readError("version", ep.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return v, replyError("version", ep.base, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Server == "" {
		return v, &Error{Op: "version", Endpoint: ep.base, Status: resp.StatusCode, Message: "unexpected reply: " + snippet(body), Err: err, kind: ErrMalformedResponse}
	}
	return v, nil
}

// APIPath returns the API prefix in use for the current member ("/v3"), detecting
// it first if Config.APIPath was empty.
func (c *Client) APIPath(ctx context.Context) (string, error) {
	return c.prefix(ctx, c.pick(nil))
}

func (c *Client) prefix(ctx context.Context, ep *endpoint) (string, error) {
	if c.apiPath != "" {
		return c.apiPath, nil
	}
	ep.prefixMu.Lock()
	defer ep.prefixMu.Unlock()
	if ep.prefix != "" {
		return ep.prefix, nil
	}
	v, err := c.version(ctx, ep)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status != 0 {
			// The member answered, but not with a version (a proxy that forwards
			// only the API, say): assume a current server.
			c.log.Warn("etcd /version unreadable; assuming /v3", "endpoint", ep.base, "err", err)
			ep.prefix = "/v3"
			return ep.prefix, nil
		}
		return "", err
	}
	ep.prefix = APIPathFor(v.Server)
	return ep.prefix, nil
}

// APIPathFor returns the gateway prefix a server of the given version serves:
// "/v3alpha" up to 3.2, "/v3beta" for 3.3, "/v3" from 3.4 on. It tolerates
// pre-release and build suffixes ("3.6.0-rc.1", "3.5.9+git") and falls back to
// "/v3" for anything it cannot read.
func APIPathFor(version string) string {
	major, minor, ok := parseVersion(version)
	switch {
	case !ok:
		return "/v3"
	case major < 3 || (major == 3 && minor <= 2):
		return "/v3alpha"
	case major == 3 && minor == 3:
		return "/v3beta"
	}
	return "/v3"
}

func parseVersion(v string) (major, minor int, ok bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+ "); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return 0, 0, false
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(parts[0])
	minor, err2 = strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}
