package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/etcdgw/etcdgw/gateway"
)

// lines is a repeatable flag.
type lines []string

func (l *lines) String() string     { return strings.Join(*l, "; ") }
func (l *lines) Set(s string) error { *l = append(*l, s); return nil }

func init() {
	var ifs, thens, elses lines
	flagsOf["txn"] = func(fs *flag.FlagSet, _ *invocation) {
		fs.Var(&ifs, "if", `a comparison, as target("key") op "value": target is value, version, create, mod or lease; op is =, !=, < or > (repeatable)`)
		fs.Var(&thens, "then", `an operation when every comparison holds: put KEY VALUE, get KEY [END], del KEY [END] (repeatable)`)
		fs.Var(&elses, "else", "an operation when a comparison fails (repeatable)")
	}
	register(&command{name: "txn", summary: "a transaction from --if/--then/--else, or from stdin in etcdctl's format (comparisons, a blank line, success operations, a blank line, failure operations)",
		run: func(ctx context.Context, inv *invocation) error {
			if err := inv.want(0, 0); err != nil {
				return err
			}
			if len(ifs)+len(thens)+len(elses) == 0 {
				var err error
				if ifs, thens, elses, err = readTxn(inv); err != nil {
					return err
				}
			}
			var cmps []gateway.Cmp
			for _, s := range ifs {
				c, err := parseCmp(s)
				if err != nil {
					return err
				}
				cmps = append(cmps, c)
			}
			then, err := parseOps(thens)
			if err != nil {
				return err
			}
			els, err := parseOps(elses)
			if err != nil {
				return err
			}
			c, err := inv.client()
			if err != nil {
				return err
			}
			r, err := c.Txn().If(cmps...).Then(then...).Else(els...).Commit(ctx)
			if err != nil {
				return err
			}
			out := inv.out()
			if out.json {
				return out.encode(r)
			}
			if r.Succeeded {
				out.line("SUCCESS")
			} else {
				out.line("FAILURE")
			}
			for _, res := range r.Responses {
				out.line("")
				switch {
				case res.Put != nil:
					out.line("OK")
				case res.Delete != nil:
					out.line(fmt.Sprint(res.Delete.Deleted))
				case res.Get != nil:
					for _, kv := range res.Get.Kvs {
						out.line(string(kv.Key))
						out.line(string(kv.Value))
					}
				}
			}
			return out.flush()
		}})
}

// readTxn reads etcdctl's non-interactive txn format from stdin.
func readTxn(inv *invocation) (ifs, thens, elses lines, err error) {
	sc := bufio.NewScanner(inv.e.stdin)
	part := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			part++
			continue
		}
		switch part {
		case 0:
			ifs = append(ifs, line)
		case 1:
			thens = append(thens, line)
		case 2:
			elses = append(elses, line)
		default:
			return nil, nil, nil, usagef("txn: more than three parts on stdin")
		}
	}
	return ifs, thens, elses, sc.Err()
}

// words splits a line into words; a double-quoted word may hold spaces and
// Go escapes.
func words(s string) ([]string, error) {
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, usagef("bad quoting in %q", s)
			}
			w, _ := strconv.Unquote(q)
			out = append(out, w)
			s = s[len(q):]
			continue
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			i = len(s)
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out, nil
}

// parseCmp reads target("key") op "value".
func parseCmp(s string) (gateway.Cmp, error) {
	bad := usagef(`comparison %q: want target("key") op "value"`, s)
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return gateway.Cmp{}, bad
	}
	target := strings.TrimSpace(s[:open])
	key, err := strconv.Unquote(strings.TrimSpace(s[open+1 : closing]))
	if err != nil {
		return gateway.Cmp{}, bad
	}
	rest, err := words(s[closing+1:])
	if err != nil || len(rest) != 2 {
		return gateway.Cmp{}, bad
	}
	op, ok := map[string]gateway.CmpResult{"=": gateway.Equal, "==": gateway.Equal, "!=": gateway.NotEqual,
		"<": gateway.Less, ">": gateway.Greater}[rest[0]]
	if !ok {
		return gateway.Cmp{}, bad
	}
	val := rest[1]
	if target == "value" {
		return gateway.CmpValue(key, op, val), nil
	}
	var n int64
	if target == "lease" {
		n, err = strconv.ParseInt(val, 16, 64)
	} else {
		n, err = strconv.ParseInt(val, 10, 64)
	}
	if err != nil {
		return gateway.Cmp{}, bad
	}
	switch target {
	case "version", "ver":
		return gateway.CmpVersion(key, op, n), nil
	case "create", "c":
		return gateway.CmpCreateRevision(key, op, n), nil
	case "mod", "m":
		return gateway.CmpModRevision(key, op, n), nil
	case "lease":
		return gateway.CmpLease(key, op, n), nil
	}
	return gateway.Cmp{}, bad
}

// parseOps reads put/get/del lines.
func parseOps(ss []string) ([]gateway.Op, error) {
	var ops []gateway.Op
	for _, s := range ss {
		w, err := words(s)
		if err != nil {
			return nil, err
		}
		switch {
		case len(w) == 3 && w[0] == "put":
			ops = append(ops, gateway.OpPut(w[1], w[2]))
		case (len(w) == 2 || len(w) == 3) && (w[0] == "get" || w[0] == "del"):
			var opts []gateway.Option
			if len(w) == 3 {
				opts = append(opts, gateway.WithRange(w[2]))
			}
			if w[0] == "get" {
				ops = append(ops, gateway.OpGet(w[1], opts...))
			} else {
				ops = append(ops, gateway.OpDelete(w[1], opts...))
			}
		default:
			return nil, usagef("operation %q: want put KEY VALUE, get KEY [END] or del KEY [END]", s)
		}
	}
	return ops, nil
}
