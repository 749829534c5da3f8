package gateway_test

import (
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/internal/etcdtest"
	tu "github.com/etcdgw/etcdgw/internal/testutil"
)

func makeCerts(t *testing.T) *etcdtest.Certs {
	t.Helper()
	certs, err := etcdtest.MakeCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func TestTLS(t *testing.T) {
	certs := makeCerts(t)
	cl := etcdtest.Start(t, etcdtest.Options{TLS: certs, ClientCertAuth: true})
	ctx := tu.Ctx(t)
	if !strings.HasPrefix(cl.Endpoints()[0], "https://") {
		t.Fatalf("endpoint %s is not https", cl.Endpoints()[0])
	}

	t.Run("mTLS works over HTTP/2", func(t *testing.T) {
		c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) {
			cfg.CAFile, cfg.CertFile, cfg.KeyFile = certs.CA, certs.ClientCert, certs.ClientKey
		})
		var h2 atomic.Int64
		gateway.ObserveResponses(c, func(r *http.Response) {
			if r.ProtoMajor == 2 {
				h2.Add(1)
			}
		})
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "tls/k", "v"))
		tu.Eq(t, "value", string(tu.Must[*gateway.KeyValue](t)(c.GetOne(ctx, "tls/k")).Value), "v")
		w := tu.Must[*gateway.Watch](t)(c.Watch(ctx, "tls/w"))
		defer w.Stop()
		tu.Must[*gateway.PutResponse](t)(c.Put(ctx, "tls/w", "x"))
		tu.Eq(t, "watched over TLS", string(collect(t, ctx, w, 1)[0].Kv.Value), "x")
		if h2.Load() == 0 {
			t.Fatal("no response came over HTTP/2")
		}
	})

	t.Run("caller's tls.Config", func(t *testing.T) {
		cert, err := tls.LoadX509KeyPair(certs.ClientCert, certs.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) {
			cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			cfg.CAFile = certs.CA
		})
		tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "tls/k"))
	})

	t.Run("wrong CA", func(t *testing.T) {
		c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) {
			cfg.CAFile, cfg.CertFile, cfg.KeyFile = certs.OtherCA, certs.ClientCert, certs.ClientKey
		})
		// Refused certificates are final: not retried for RetryTimeout, and a
		// write is known not to have been applied.
		start := time.Now()
		_, err := c.Put(ctx, "tls/k", "v")
		if errors.Is(err, gateway.ErrOutcomeUnknown) || time.Since(start) > 2*time.Second {
			t.Fatalf("refused certificate: %v after %v", err, time.Since(start))
		}
		var ue *tls.CertificateVerificationError
		if !errors.As(err, &ue) {
			t.Fatalf("wrong CA: %v (%T), want a certificate verification error", err, err)
		}
		var ge *gateway.Error
		if !errors.As(err, &ge) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("unclear error: %v", err)
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) { cfg.CAFile = certs.CA })
		start := time.Now()
		_, err := c.Put(ctx, "tls/k", "v")
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("without a client certificate: %v", err)
		}
		if errors.Is(err, gateway.ErrOutcomeUnknown) || time.Since(start) > 2*time.Second {
			t.Fatalf("refused client: %v after %v", err, time.Since(start))
		}
		t.Logf("without a client certificate: %v", err)
	})

	t.Run("server name override", func(t *testing.T) {
		c := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) {
			cfg.CAFile, cfg.CertFile, cfg.KeyFile = certs.CA, certs.ClientCert, certs.ClientKey
			cfg.ServerName = "localhost" // a name the certificate holds
		})
		tu.Must[*gateway.GetResponse](t)(c.Get(ctx, "tls/k"))
		bad := tu.Client(t, cl.Endpoints(), func(cfg *gateway.Config) {
			cfg.CAFile, cfg.CertFile, cfg.KeyFile = certs.CA, certs.ClientCert, certs.ClientKey
			cfg.ServerName = "not-etcd.example"
			cfg.RetryTimeout = -1
		})
		_, err := bad.Get(ctx, "tls/k")
		if err == nil || !strings.Contains(err.Error(), "not-etcd.example") {
			t.Fatalf("name mismatch: %v", err)
		}
	})
}

func TestTLSMisconfiguration(t *testing.T) {
	certs := makeCerts(t)
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	cases := []struct {
		name string
		cfg  gateway.Config
		want string
	}{
		{"CA file missing", gateway.Config{CAFile: filepath.Join(dir, "missing.pem")}, "no such file"},
		{"CA file not a certificate", gateway.Config{CAFile: notPEM}, "holds no PEM certificate"},
		{"cert without key", gateway.Config{CertFile: certs.ClientCert}, "set both or neither"},
		{"key does not match", gateway.Config{CertFile: certs.ClientCert, KeyFile: certs.ServerKey}, "does not match"},
		{"cert file not a certificate", gateway.Config{CertFile: notPEM, KeyFile: certs.ClientKey}, "client certificate"},
		{"password without user", gateway.Config{Password: "x"}, "Password without a Username"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error saying %q", err, tc.want)
			}
			if !errors.Is(err, gateway.ErrInvalidConfig) {
				t.Fatalf("New: %v does not match ErrInvalidConfig", err)
			}
		})
	}
}
