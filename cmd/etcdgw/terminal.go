package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// isTerminal reports whether w is a terminal: progress lines go only there.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// promptPassword asks for user's password on the terminal without echoing it.
// Without a terminal it refuses: a password never comes from a pipe by
// surprise.
func promptPassword(e *env, user string) (string, error) {
	in, ok := e.stdin.(*os.File)
	if !ok || !isTerminal(in) {
		return "", errors.New("no password: set $ETCDGW_PASSWORD (stdin is not a terminal to prompt on)")
	}
	fmt.Fprintf(e.stderr, "Password for %s: ", user)
	restore, err := noEcho(in)
	if err != nil {
		return "", fmt.Errorf("no password: cannot turn off echo (%v); set $ETCDGW_PASSWORD", err)
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	restore()
	fmt.Fprintln(e.stderr)
	if err != nil && line == "" {
		return "", fmt.Errorf("no password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
