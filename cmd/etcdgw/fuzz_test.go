package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzCommandLine: no command line makes etcdgw panic, and one it refuses
// gets exit code 2 and a single line. The endpoint is one nothing listens on,
// and the command timeout short, so a line that parses fails fast.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"get\x00k", "get\x00k\x00--prefix\x00--from-key", "put\x00k\x00--\x00-v", "lock\x00n\x00--try\x00--ttl\x001",
		"txn\x00--if\x00mod(\"k\") > \"0\"", "-w\x00json\x00get", "help\x00lease", "lease\x00grant\x00x", "--user\x00a:b\x00get\x00k",
		"elect\x00--observe", "watch\x00k\x00e\x00--prefix", "--endpoints\x00", "barrier", "member\x00list\x00extra",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		for _, a := range args {
			// Commands that wait for ever, or run a command, are not
			// for a fuzzer to run.
			if a == "watch" || a == "lock" || a == "elect" || a == "keep-alive" || a == "hold" || a == "wait" || a == "--" {
				return
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errb bytes.Buffer
		e := &env{args: append(args, "--endpoints=http://127.0.0.1:1", "--command-timeout=10ms", "--dial-timeout=10ms"),
			stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			getenv: func(string) string { return "" }}
		code := run(ctx, e)
		if code == exitUsage && strings.Count(errb.String(), "\n") != 1 {
			t.Fatalf("%q: usage error in %d lines: %q", args, strings.Count(errb.String(), "\n"), errb.String())
		}
	})
}

// FuzzTxnSyntax: the txn parsers never panic.
func FuzzTxnSyntax(f *testing.F) {
	for _, s := range []string{`mod("k") > "0"`, `value("a b") = "x y"`, `lease("k") != "7f"`, `put k "v w"`, `get a z`, `del "\x00"`, `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseCmp(s)
		_, _ = parseOps([]string{s})
		_, _ = words(s)
	})
}
