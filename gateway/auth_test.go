package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

const (
	rootPassword  = "r00t-Secret-7c1f"
	alicePassword = "al1ce-Secret-93ab"
)

// enableAuth creates root and alice (read-write on alice/ only) and turns auth on.
func enableAuth(t *testing.T, cl *etcdtest.Cluster) {
	t.Helper()
	ctx := tu.Ctx(t)
	admin := tu.Client(t, cl.Endpoints())
	tu.Must[*gateway.AuthResponse](t)(admin.RoleAdd(ctx, "root"))
	tu.Must[*gateway.AuthResponse](t)(admin.UserAdd(ctx, "root", rootPassword))
	tu.Must[*gateway.AuthResponse](t)(admin.UserGrantRole(ctx, "root", "root"))
	tu.Must[*gateway.AuthResponse](t)(admin.RoleAdd(ctx, "alice-rw"))
	tu.Must[*gateway.AuthResponse](t)(admin.RoleGrantPermission(ctx, "alice-rw", "alice/", string(gateway.PrefixEnd([]byte("alice/"))), gateway.PermReadWrite))
	tu.Must[*gateway.AuthResponse](t)(admin.UserAdd(ctx, "alice", alicePassword))
	tu.Must[*gateway.AuthResponse](t)(admin.UserGrantRole(ctx, "alice", "alice-rw"))
	tu.Must[*gateway.AuthResponse](t)(admin.AuthEnable(ctx))
}

func TestAuth(t *testing.T) {
	cl := etcdtest.Start(t, etcdtest.Options{Args: []string{"--auth-token-ttl=1"}})
	enableAuth(t, cl)
	ctx := tu.Ctx(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	user := func(name, password string) func(*gateway.Config) {
		return func(cfg *gateway.Config) {
			cfg.Username, cfg.Password, cfg.Logger, cfg.RetryTimeout = name, password, logger, -1
		}
	}
	root := tu.Client(t, cl.Endpoints(), user("root", rootPassword))
	alice := tu.Client(t, cl.Endpoints(), user("alice", alicePassword))
	var errs []error

	if cl.AtLeast(3, 5) {
		st := tu.Must[*gateway.AuthStatusResponse](t)(root.AuthStatus(ctx))
		tu.Eq(t, "auth enabled", st.Enabled, true)
	} else { // 3.4's gateway has no auth/status route
		_, err := root.AuthStatus(ctx)
		isErr(t, err, gateway.ErrUnimplemented)
	}

	// Alice within her prefix: KV, watch, lease.
	tu.Must[*gateway.PutResponse](t)(alice.Put(ctx, "alice/a", "1"))
	w := tu.Must[*gateway.Watch](t)(alice.WatchPrefix(ctx, "alice/"))
	defer w.Stop()
	tu.Must[*gateway.PutResponse](t)(alice.Put(ctx, "alice/b", "2"))
	tu.Eq(t, "watched", string(collect(t, ctx, w, 1)[0].Kv.Key), "alice/b")
	l := tu.Must[*gateway.LeaseGrantResponse](t)(alice.Grant(ctx, 60))
	tu.Must[*gateway.LeaseKeepAliveResponse](t)(alice.KeepAliveOnce(ctx, l.ID))

	// Outside it: permission denied, for reads, writes and watches.
	_, err := alice.Put(ctx, "bob/a", "1")
	isErr(t, err, gateway.ErrPermissionDenied)
	errs = append(errs, err)
	_, err = alice.Get(ctx, "bob/a")
	isErr(t, err, gateway.ErrPermissionDenied)
	errs = append(errs, err)
	bw, err := alice.Watch(ctx, "bob/a")
	if err == nil {
		err = ended(t, ctx, bw)
	}
	isErr(t, err, gateway.ErrPermissionDenied)
	errs = append(errs, err)

	// A wrong password, and no credentials at all.
	wrong := tu.Client(t, cl.Endpoints(), user("alice", "not-"+alicePassword))
	_, err = wrong.Get(ctx, "alice/a")
	isErr(t, err, gateway.ErrAuthFailed)
	errs = append(errs, err)
	anon := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.RetryTimeout = -1 })
	_, err = anon.Get(ctx, "alice/a")
	isErr(t, err, gateway.ErrAuthRequired)
	errs = append(errs, err)

	// Token expiry: wait until the server rejects alice's token, then many
	// callers at once must all succeed through a single re-authentication.
	token, n := gateway.AuthState(alice)
	if token == "" {
		t.Fatal("alice has no token")
	}
	waitTokenExpired(t, ctx)
	var wg sync.WaitGroup
	callErrs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := alice.Get(ctx, "alice/a")
			callErrs <- err
		}()
	}
	wg.Wait()
	close(callErrs)
	for err := range callErrs {
		if err != nil {
			t.Fatalf("call across token expiry: %v", err)
		}
	}
	newToken, n2 := gateway.AuthState(alice)
	tu.Eq(t, "authentications for 20 callers after expiry", n2, n+1)
	if newToken == token {
		t.Fatal("token not renewed")
	}
	// A keepalive and a new watch across expiry too.
	waitTokenExpired(t, ctx)
	tu.Must[*gateway.LeaseKeepAliveResponse](t)(alice.KeepAliveOnce(ctx, l.ID))
	_, n3 := gateway.AuthState(alice)
	if cl.AtLeast(3, 6) {
		tu.Eq(t, "authentications after the keepalive", n3, n2+1)
	} else { // 3.4 and 3.5 renew leases without looking at the token
		tu.Eq(t, "authentications after the keepalive", n3, n2)
	}
	waitTokenExpired(t, ctx)
	w2 := tu.Must[*gateway.Watch](t)(alice.Watch(ctx, "alice/c"))
	defer w2.Stop()
	_, n4 := gateway.AuthState(alice)
	tu.Eq(t, "authentications after the watch", n4, n3+1)

	// Neither password nor any token in an error or a log line.
	for _, err := range errs {
		t.Logf("error: %v", err)
	}
	secrets := []string{rootPassword, alicePassword, token, newToken, mustToken(alice), mustToken(root)}
	text := logs.String()
	for _, err := range errs {
		text += err.Error() + fmt.Sprintf("%+v %#v", err, err)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("a secret appears in an error or log line")
		}
	}
}

func mustToken(c *gateway.Client) string { tok, _ := gateway.AuthState(c); return tok }

// waitTokenExpired waits until a simple token unused since now has certainly
// expired: --auth-token-ttl (1 s here) plus the 1 s resolution of etcd's expiry
// sweep, with a margin. There is no event to wait for instead: any request that
// asked whether the token is still valid would extend it. The tests check that a
// new token was obtained, so a token that had not expired fails them.
func waitTokenExpired(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(3 * time.Second):
	}
}

// TestAuthEnabledLater: a client with credentials that first met a cluster
// without auth starts sending a token once auth is turned on.
func TestAuthEnabledLater(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.Username, cfg.Password = "alice", alicePassword })
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "alice/x", "before"))
	if tok := mustToken(c); tok != "" {
		t.Fatal("a token without auth")
	}
	enableAuth(t, cl)
	tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "alice/x", "after"))
	if mustToken(c) == "" {
		t.Fatal("no token after auth was enabled")
	}
	_, err := c.Put(ctx, "other", "x")
	if !errors.Is(err, gateway.ErrPermissionDenied) {
		t.Fatalf("outside the granted prefix: %v", err)
	}
}

// TestUsersAndRoles: the auth store can be read back, and each refusal has its
// sentinel.
func TestUsersAndRoles(t *testing.T) {
	cl := etcdtest.Single(t)
	ctx := tu.Ctx(t)
	c := tu.Client(t, cl.Endpoints())
	tu.Must[*gateway.AuthResponse](t)(c.RoleAdd(ctx, "reader"))
	tu.Must[*gateway.AuthResponse](t)(c.RoleGrantPermission(ctx, "reader", "cfg/", string(gateway.PrefixEnd([]byte("cfg/"))), gateway.PermRead))
	tu.Must[*gateway.AuthResponse](t)(c.RoleGrantPermission(ctx, "reader", "one", "", gateway.PermReadWrite))
	tu.Must[*gateway.AuthResponse](t)(c.UserAdd(ctx, "bob", "b0b-Secret-12"))
	tu.Must[*gateway.AuthResponse](t)(c.UserGrantRole(ctx, "bob", "reader"))

	eqStrings(t, "users", tu.Must[*gateway.UserListResponse](t)(c.UserList(ctx)).Users, "bob")
	eqStrings(t, "bob's roles", tu.Must[*gateway.UserGetResponse](t)(c.UserGet(ctx, "bob")).Roles, "reader")
	eqStrings(t, "roles", tu.Must[*gateway.RoleListResponse](t)(c.RoleList(ctx)).Roles, "reader")
	perms := tu.Must[*gateway.RoleGetResponse](t)(c.RoleGet(ctx, "reader")).Perm
	tu.Eq(t, "permissions", len(perms), 2)
	byKey := map[string]gateway.RolePermission{}
	for _, p := range perms {
		byKey[string(p.Key)] = p
	}
	tu.Eq(t, "cfg/ permission", byKey["cfg/"].Type, gateway.PermRead)
	tu.Eq(t, "cfg/ range end", string(byKey["cfg/"].RangeEnd), "cfg0")
	tu.Eq(t, "one permission", byKey["one"].Type, gateway.PermReadWrite)
	tu.Eq(t, "one range end", string(byKey["one"].RangeEnd), "")

	_, err := c.UserAdd(ctx, "bob", "x")
	isErr(t, err, gateway.ErrUserExists)
	_, err = c.UserGet(ctx, "carol")
	isErr(t, err, gateway.ErrUserNotFound)
	_, err = c.RoleAdd(ctx, "reader")
	isErr(t, err, gateway.ErrRoleExists)
	_, err = c.RoleGet(ctx, "writer")
	isErr(t, err, gateway.ErrRoleNotFound)
	tu.Must[*gateway.AuthResponse](t)(c.RoleAdd(ctx, "writer"))
	_, err = c.UserRevokeRole(ctx, "bob", "writer")
	isErr(t, err, gateway.ErrRoleNotGranted)
	_, err = c.RoleRevokePermission(ctx, "writer", "cfg/", "")
	isErr(t, err, gateway.ErrPermissionNotGranted)
}
