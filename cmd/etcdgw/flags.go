package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/etcdgw/etcdgw/gateway"
	"github.com/etcdgw/etcdgw/lease"
)

// globals are the flags every command takes, as etcdctl names them.
type globals struct {
	endpoints      string
	cacert         string
	cert, key      string
	user           string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	write          string
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.endpoints, "endpoints", "", "comma-separated client URLs (default $ETCDGW_ENDPOINTS, else $ETCDCTL_ENDPOINTS, else http://127.0.0.1:2379)")
	fs.StringVar(&g.cacert, "cacert", "", "verify the servers' certificates with this CA bundle")
	fs.StringVar(&g.cert, "cert", "", "client certificate file (TLS client authentication)")
	fs.StringVar(&g.key, "key", "", "client key file")
	fs.StringVar(&g.user, "user", "", "user name; the password comes from $ETCDGW_PASSWORD or a prompt")
	fs.DurationVar(&g.dialTimeout, "dial-timeout", 2*time.Second, "timeout for connecting to an endpoint")
	fs.DurationVar(&g.commandTimeout, "command-timeout", 5*time.Second, "timeout for each request (not for waits)")
	fs.StringVar(&g.write, "w", "simple", "output format: simple, json or table")
	fs.StringVar(&g.write, "write-out", "simple", "output format: simple, json or table")
}

// globalTakesValue reports whether a global flag given without "=" takes the
// next argument as its value (for global flags before the command).
func globalTakesValue(arg string) bool {
	name := strings.TrimLeft(arg, "-")
	fs := newFlagSet("")
	(&globals{}).register(fs)
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// invocation is one command's parsed command line, and the client it uses.
type invocation struct {
	e     *env
	path  string
	g     globals
	flags *flag.FlagSet
	args  []string // positional arguments
	after []string // what follows "--": a command to run
	c     *gateway.Client
}

// errHelp: -h was asked for and the help printed.
var errHelp = errors.New("help")

// flagsOf registers each command's own flags; set at init by the commands.
var flagsOf = map[string]func(fs *flag.FlagSet, inv *invocation){}

// parse parses the command line of cmd: flags may come between positional
// arguments; everything after "--" is kept apart.
func parse(e *env, cmd *command, path string, args []string) (*invocation, error) {
	inv := &invocation{e: e, path: path}
	fs := newFlagSet(path)
	inv.g.register(fs)
	if f := flagsOf[path]; f != nil {
		f(fs, inv)
	}
	inv.flags = fs
	for i, a := range args {
		if a == "--" {
			args, inv.after = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(e.stdout, "usage: etcdgw %s [flags] %s\n    %s\n\nflags:\n", path, cmd.args, cmd.summary)
				fs.SetOutput(e.stdout)
				fs.VisitAll(func(f *flag.Flag) {
					var g globals
					gs := newFlagSet("")
					g.register(gs)
					if gs.Lookup(f.Name) == nil {
						fmt.Fprintf(e.stdout, "  -%s\t%s (default %q)\n", f.Name, f.Usage, f.DefValue)
					}
				})
				fmt.Fprintln(e.stdout, "\nand the global flags (etcdgw help).")
				return inv, errHelp
			}
			return inv, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		inv.args = append(inv.args, rest[0])
		args = rest[1:]
	}
	switch inv.g.write {
	case "simple", "json", "table":
	default:
		return inv, fmt.Errorf("-w %q: want simple, json or table", inv.g.write)
	}
	return inv, nil
}

// want checks the number of positional arguments.
func (inv *invocation) want(min, max int) error {
	if n := len(inv.args); n < min || max >= 0 && n > max {
		return usagef("wrong number of arguments (%d); run 'etcdgw help %s'", n, inv.path)
	}
	return nil
}

// client connects (lazily: New does no I/O) to the endpoints the flags and
// environment give.
func (inv *invocation) client() (*gateway.Client, error) {
	if inv.c != nil {
		return inv.c, nil
	}
	eps := inv.g.endpoints
	for _, v := range []string{"ETCDGW_ENDPOINTS", "ETCDCTL_ENDPOINTS"} {
		if eps == "" {
			eps = inv.e.getenv(v)
		}
	}
	if eps == "" {
		eps = "http://127.0.0.1:2379"
	}
	cfg := gateway.Config{
		Endpoints:      strings.Split(eps, ","),
		CAFile:         inv.g.cacert,
		CertFile:       inv.g.cert,
		KeyFile:        inv.g.key,
		DialTimeout:    inv.g.dialTimeout,
		RequestTimeout: inv.g.commandTimeout,
		// A command line gives up soon: one pass over the endpoints, then a
		// clear error, rather than minutes of retries.
		RetryTimeout: inv.g.commandTimeout,
	}
	if inv.g.user != "" {
		if strings.Contains(inv.g.user, ":") {
			return nil, usagef("--user takes a name alone; give the password in $ETCDGW_PASSWORD or at the prompt")
		}
		pw := inv.e.getenv("ETCDGW_PASSWORD")
		if pw == "" {
			var err error
			if pw, err = promptPassword(inv.e, inv.g.user); err != nil {
				return nil, err
			}
		}
		cfg.Username, cfg.Password = inv.g.user, pw
	}
	c, err := gateway.New(cfg)
	if err != nil {
		return nil, err
	}
	inv.c = c
	return c, nil
}

// lease grants a lease of ttl seconds on the command's client. The returned
// func revokes it, within --command-timeout, whatever ended the command: the
// keys on it go with it.
func (inv *invocation) lease(ctx context.Context, ttl int64) (*lease.Lease, func(), error) {
	c, err := inv.client()
	if err != nil {
		return nil, nil, err
	}
	l, err := lease.New(ctx, c, lease.WithTTL(ttl))
	if err != nil {
		return nil, nil, err
	}
	return l, func() {
		ctx, cancel := inv.ending()
		defer cancel()
		_ = l.Close(ctx)
	}, nil
}

// ending is the context of a last step (a release, an ack, a revoke): its own
// --command-timeout, even when the command's ctx (an interrupt) has ended.
func (inv *invocation) ending() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), inv.g.commandTimeout)
}

// waitAtMost bounds a wait by --timeout d (0: no bound).
func waitAtMost(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// timedOut turns a wait that --timeout d cut short (ctx itself still live)
// into exit code 6, saying what did not come.
func timedOut(ctx context.Context, err error, d time.Duration, what string) error {
	if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return &exitError{code: exitTimeout, err: fmt.Errorf("%s within %v", what, d)}
	}
	return err
}

func (inv *invocation) close() {
	if inv.c != nil {
		inv.c.Close()
	}
}
