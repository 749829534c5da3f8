package gateway

import (
	"context"
	"errors"
	"sync"
)

// authState holds the credentials and the current token. One token serves every
// request and stream; when the server rejects it, the first caller to notice gets
// a new one and the others wait for it and use it: concurrent callers share a
// single re-authentication.
type authState struct {
	user, password string

	mu    sync.Mutex
	token string
	gen   uint64 // counts the tokens obtained; 0: none yet
	noTok bool   // the cluster had auth disabled when last asked
}

// withAuth runs f with the current token (none without credentials). If the
// server rejects the token as invalid, expired or issued before an auth change,
// it authenticates again and runs f once more: those rejections happen before a
// request is applied, so sending it again is safe.
func (c *Client) withAuth(ctx context.Context, f func(token string) error) error {
	a := c.auth
	if a == nil {
		return f("")
	}
	token, gen, err := a.current(ctx, c)
	if err != nil {
		return err
	}
	err = f(token)
	if errors.Is(err, ErrInvalidAuthToken) || errors.Is(err, ErrAuthOldRevision) || errors.Is(err, ErrAuthRequired) {
		if token, err = a.renew(ctx, c, gen); err != nil {
			return err
		}
		err = f(token)
	}
	return err
}

func (a *authState) current(ctx context.Context, c *Client) (string, uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen == 0 {
		if err := a.authenticate(ctx, c); err != nil {
			return "", 0, err
		}
	}
	return a.token, a.gen, nil
}

// renew replaces the token that generation gen handed out, unless another caller
// did so already.
func (a *authState) renew(ctx context.Context, c *Client, gen uint64) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.gen == gen {
		if err := a.authenticate(ctx, c); err != nil {
			return "", err
		}
	}
	return a.token, nil
}

// authenticate gets a token; a.mu is held. A cluster without auth answers
// ErrAuthNotEnabled: the client then sends no token until the server asks for
// one.
func (a *authState) authenticate(ctx context.Context, c *Client) error {
	req := struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}{a.user, a.password}
	var resp struct {
		Token string `json:"token"`
	}
	err := c.onEndpoints(ctx, rpcAuthenticate, func(ep *endpoint) error {
		return c.postTo(ctx, ep, rpcAuthenticate.path, mustJSON(req), &resp, "")
	})
	switch {
	case errors.Is(err, ErrAuthNotEnabled):
		a.token, a.noTok = "", true
	case err != nil:
		return err
	default:
		a.token, a.noTok = resp.Token, false
	}
	a.gen++
	return nil
}

// AuthStatusResponse is the result of AuthStatus.
type AuthStatusResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Enabled reports whether authentication is on.
	Enabled bool `json:"enabled"`
	// AuthRevision counts changes to users, roles and permissions.
	AuthRevision uint64 `json:"authRevision,string"`
}

// AuthResponse is the result of the calls that change auth settings.
type AuthResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
}

// Permission is what a role may do with a key range.
type Permission int

// Permissions, as etcd numbers them.
const (
	PermRead Permission = iota
	PermWrite
	PermReadWrite
)

// UnmarshalJSON accepts the permission's name ("READWRITE") or number.
func (p *Permission) UnmarshalJSON(b []byte) error {
	n, err := unmarshalEnum(b, map[string]int{"READ": 0, "WRITE": 1, "READWRITE": 2})
	*p = Permission(n)
	return err
}

// RolePermission is one permission of a role: what it may do with the keys
// in [Key, RangeEnd) (Key alone when RangeEnd is empty).
type RolePermission struct {
	// Type is what the role may do.
	Type Permission `json:"permType"`
	// Key is the first key of the range.
	Key []byte `json:"key"`
	// RangeEnd is the end of the range, excluded; empty for Key alone.
	RangeEnd []byte `json:"range_end"`
}

// UserListResponse is the result of UserList.
type UserListResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Users are the names of every user.
	Users []string `json:"users"`
}

// UserGetResponse is the result of UserGet.
type UserGetResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Roles are the roles granted to the user.
	Roles []string `json:"roles"`
}

// RoleListResponse is the result of RoleList.
type RoleListResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Roles are the names of every role.
	Roles []string `json:"roles"`
}

// RoleGetResponse is the result of RoleGet.
type RoleGetResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header Header `json:"header"`
	// Perm are the role's permissions.
	Perm []RolePermission `json:"perm"`
}

// UserList lists every user (root only).
func (c *Client) UserList(ctx context.Context) (*UserListResponse, error) {
	return call[UserListResponse](ctx, c, rpcUserList, 0, struct{}{})
}

// UserGet returns a user's roles, or an error matching ErrUserNotFound.
func (c *Client) UserGet(ctx context.Context, name string) (*UserGetResponse, error) {
	return call[UserGetResponse](ctx, c, rpcUserGet, 0, struct {
		Name string `json:"name"`
	}{name})
}

// RoleList lists every role (root only).
func (c *Client) RoleList(ctx context.Context) (*RoleListResponse, error) {
	return call[RoleListResponse](ctx, c, rpcRoleList, 0, struct{}{})
}

// RoleGet returns a role's permissions, or an error matching ErrRoleNotFound.
func (c *Client) RoleGet(ctx context.Context, name string) (*RoleGetResponse, error) {
	return call[RoleGetResponse](ctx, c, rpcRoleGet, 0, struct {
		Role string `json:"role"`
	}{name})
}

// AuthEnable turns authentication on. The user "root" with the role "root" must
// exist first.
func (c *Client) AuthEnable(ctx context.Context) (*AuthResponse, error) {
	return call[AuthResponse](ctx, c, rpcAuthEnable, 0, struct{}{})
}

// AuthDisable turns authentication off (root only).
func (c *Client) AuthDisable(ctx context.Context) (*AuthResponse, error) {
	return call[AuthResponse](ctx, c, rpcAuthDisable, 0, struct{}{})
}

// AuthStatus reports whether authentication is on.
func (c *Client) AuthStatus(ctx context.Context) (*AuthStatusResponse, error) {
	return call[AuthStatusResponse](ctx, c, rpcAuthStatus, 0, struct{}{})
}

// UserAdd creates a user with a password.
func (c *Client) UserAdd(ctx context.Context, name, password string) (*AuthResponse, error) {
	req := struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}{name, password}
	return call[AuthResponse](ctx, c, rpcUserAdd, 0, req)
}

// UserDelete deletes a user.
func (c *Client) UserDelete(ctx context.Context, name string) (*AuthResponse, error) {
	return call[AuthResponse](ctx, c, rpcUserDelete, 0, struct {
		Name string `json:"name"`
	}{name})
}

// UserChangePassword sets a user's password.
func (c *Client) UserChangePassword(ctx context.Context, name, password string) (*AuthResponse, error) {
	req := struct {
		Name     string `json:"name"`
		Password string `json:"password"`
	}{name, password}
	return call[AuthResponse](ctx, c, rpcUserPassword, 0, req)
}

// UserGrantRole gives a user a role.
func (c *Client) UserGrantRole(ctx context.Context, user, role string) (*AuthResponse, error) {
	return call[AuthResponse](ctx, c, rpcUserGrant, 0, struct {
		User string `json:"user"`
		Role string `json:"role"`
	}{user, role})
}

// UserRevokeRole takes a role from a user.
func (c *Client) UserRevokeRole(ctx context.Context, user, role string) (*AuthResponse, error) {
	return call[AuthResponse](ctx, c, rpcUserRevoke, 0, struct {
		Name string `json:"name"`
		Role string `json:"role"`
	}{user, role})
}

// RoleAdd creates a role.
func (c *Client) RoleAdd(ctx context.Context, name string) (*AuthResponse, error) {
	return call[AuthResponse](ctx, c, rpcRoleAdd, 0, struct {
		Name string `json:"name"`
	}{name})
}

// RoleDelete deletes a role.
func (c *Client) RoleDelete(ctx context.Context, name string) (*AuthResponse, error) {
	return call[AuthResponse](ctx, c, rpcRoleDelete, 0, struct {
		Role string `json:"role"`
	}{name})
}

// RoleGrantPermission lets a role read and/or write the keys in [key, rangeEnd);
// an empty rangeEnd means key alone. Use string(PrefixEnd([]byte(key))) for a
// prefix.
func (c *Client) RoleGrantPermission(ctx context.Context, role, key, rangeEnd string, perm Permission) (*AuthResponse, error) {
	type permission struct {
		PermType Permission `json:"permType"`
		Key      []byte     `json:"key"`
		RangeEnd []byte     `json:"range_end,omitempty"`
	}
	req := struct {
		Name string     `json:"name"`
		Perm permission `json:"perm"`
	}{role, permission{perm, []byte(key), []byte(rangeEnd)}}
	return call[AuthResponse](ctx, c, rpcRoleGrant, 0, req)
}

// RoleRevokePermission takes back a role's permission on [key, rangeEnd).
func (c *Client) RoleRevokePermission(ctx context.Context, role, key, rangeEnd string) (*AuthResponse, error) {
	req := struct {
		Role     string `json:"role"`
		Key      []byte `json:"key"`
		RangeEnd []byte `json:"range_end,omitempty"`
	}{role, []byte(key), []byte(rangeEnd)}
	return call[AuthResponse](ctx, c, rpcRoleRevoke, 0, req)
}
