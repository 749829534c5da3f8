// Command etcdgw is etcd's coordination primitives from a shell, over the
// HTTP/JSON gateway: keys, watches, leases, cluster status, and locks and
// elections that run a command while they are held. Its flags follow
// etcdctl's habits.
//
//	etcdgw put greeting hello
//	etcdgw get --prefix greet
//	etcdgw lock nightly-backup -- ./backup.sh
//	etcdgw elect --observe scheduler
//
// Run `etcdgw help` for the commands and `etcdgw help CMD` for one.
//
// Exit codes: 0 success; 1 the command failed (an error line on stderr);
// 2 bad usage; 3 no endpoint answered; 4 a lock or election is held by
// another (lock --try); 5 the lock or leadership was lost while held (its
// command was stopped); 6 --timeout passed while waiting; 130 interrupted
// (Ctrl-C). A command run under lock or elect exits with its own status, which
// etcdgw returns.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/etcdgw/etcdgw/gateway"
)

// Exit codes; the package documentation lists them.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitUnavailable = 3
	exitHeld        = 4
	exitLost        = 5
	exitTimeout     = 6
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{args: os.Args[1:], stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// env is what a command sees of the process: tests run commands with their own.
type env struct {
	args           []string
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand.
type command struct {
	name    string
	args    string // the positional arguments, for usage
	summary string
	// run parses its own flags (cmd.flags, with the global ones) and does
	// the work.
	run func(ctx context.Context, cmd *invocation) error
	// subs, for a command with subcommands (lease, member, endpoint).
	subs []*command
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

func find(list []*command, name string) *command {
	for _, c := range list {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run runs the command line in e and returns the exit code.
func run(ctx context.Context, e *env) int {
	args := e.args
	// Global flags may come before the command as well as after it.
	var pre []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "--" {
		pre = append(pre, args[0])
		args = args[1:]
		if len(args) > 0 && !strings.Contains(pre[len(pre)-1], "=") && globalTakesValue(pre[len(pre)-1]) {
			pre = append(pre, args[0])
			args = args[1:]
		}
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			return helpFor(e, args[1:])
		}
		usage(e.stdout)
		return exitOK
	}
	path := []string{args[0]}
	cmd := find(commands, args[0])
	args = args[1:]
	for cmd != nil && cmd.subs != nil {
		if len(args) == 0 {
			fmt.Fprintf(e.stderr, "etcdgw %s: which one? %s\n", cmd.name, names(cmd.subs))
			return exitUsage
		}
		path = append(path, args[0])
		cmd = find(cmd.subs, args[0])
		args = args[1:]
	}
	if cmd == nil {
		fmt.Fprintf(e.stderr, "etcdgw: unknown command %q; run 'etcdgw help'\n", strings.Join(path, " "))
		return exitUsage
	}
	inv, err := parse(e, cmd, strings.Join(path, " "), append(pre, args...))
	if err != nil {
		if errors.Is(err, errHelp) {
			return exitOK
		}
		fail(e, inv.path, err)
		return exitUsage
	}
	err = cmd.run(ctx, inv)
	inv.close()
	return report(e, inv.path, ctx, err)
}

// report prints err as one line and maps it to an exit code.
func report(e *env, path string, ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	var x *exitError
	if errors.As(err, &x) {
		if x.err != nil {
			fail(e, path, x.err)
		}
		return x.code
	}
	code := exitFailed
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, context.DeadlineExceeded):
		code = exitTimeout
	case errors.Is(err, gateway.ErrUnavailable), errors.Is(err, gateway.ErrNoLeader):
		code = exitUnavailable
	case errors.As(err, new(usageError)):
		code = exitUsage
	}
	fail(e, path, err)
	return code
}

// fail prints err as one line: what the user typed may hold line breaks.
func fail(e *env, path string, err error) {
	msg := strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(err.Error())
	fmt.Fprintf(e.stderr, "etcdgw %s: %s\n", path, msg)
}

// exitError ends a command with a given code (and an error line, if err).
type exitError struct {
	code int
	err  error
}

func (x *exitError) Error() string {
	if x.err == nil {
		return fmt.Sprintf("exit %d", x.code)
	}
	return x.err.Error()
}

func (x *exitError) Unwrap() error { return x.err }

// usageError is a mistake in the command line.
type usageError string

func (u usageError) Error() string { return string(u) }

func usagef(format string, args ...any) error { return usageError(fmt.Sprintf(format, args...)) }

func names(list []*command) string {
	var out []string
	for _, c := range list {
		out = append(out, c.name)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "etcdgw: etcd's coordination primitives over its HTTP/JSON gateway")
	fmt.Fprintln(w, "\nusage: etcdgw [global flags] COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		if c.subs == nil {
			fmt.Fprintf(w, "  %-24s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
			continue
		}
		for _, s := range c.subs {
			fmt.Fprintf(w, "  %-24s %s\n", strings.TrimSpace(c.name+" "+s.name+" "+s.args), s.summary)
		}
	}
	fmt.Fprintln(w, "\nglobal flags (before or after the command):")
	fs := newFlagSet("")
	(&globals{}).register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nexit codes: 0 ok, 1 failed, 2 bad usage, 3 no endpoint answered, 4 held by another (--try),")
	fmt.Fprintln(w, "5 lock or leadership lost, 6 --timeout passed, 130 interrupted; under lock/elect -- CMD, CMD's own status")
	fmt.Fprintln(w, "\n'etcdgw help COMMAND' shows a command's flags.")
}

func helpFor(e *env, path []string) int {
	list, cmd := commands, (*command)(nil)
	for _, p := range path {
		cmd = find(list, p)
		if cmd == nil {
			fmt.Fprintf(e.stderr, "etcdgw help: unknown command %q\n", strings.Join(path, " "))
			return exitUsage
		}
		list = cmd.subs
	}
	if cmd.subs != nil {
		for _, s := range cmd.subs {
			fmt.Fprintf(e.stdout, "etcdgw %s %s %s\n    %s\n", cmd.name, s.name, s.args, s.summary)
		}
		return exitOK
	}
	_, _ = parse(e, cmd, strings.Join(path, " "), []string{"-h"}) // -h prints the command's usage
	return exitOK
}
