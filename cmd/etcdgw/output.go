package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
)

// output writes a command's result in the format -w chose: simple lines,
// JSON (the gateway's reply, keys and values in base64 as etcdctl prints
// them), or a table.
type output struct {
	inv   *invocation
	json  bool
	table bool
	tw    *tabwriter.Writer
}

func (inv *invocation) out() *output {
	o := &output{inv: inv, json: inv.g.write == "json", table: inv.g.write == "table"}
	if o.table {
		o.tw = tabwriter.NewWriter(inv.e.stdout, 0, 4, 2, ' ', 0)
	}
	return o
}

func (o *output) line(s string) { fmt.Fprintln(o.inv.e.stdout, s) }

func (o *output) row(cells ...string) {
	if o.tw == nil {
		o.line(strings.Join(cells, ", "))
		return
	}
	fmt.Fprintln(o.tw, strings.Join(cells, "\t"))
}

func (o *output) encode(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(o.inv.e.stdout, string(b))
	return err
}

func (o *output) flush() error {
	if o.tw != nil {
		return o.tw.Flush()
	}
	return nil
}

// leaseHex prints a lease ID as etcdctl does (hex), or "-" for none.
func leaseHex(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 16)
}

// parseLease reads a lease ID in hex, as lease grant prints it.
func parseLease(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(s, "0x"), 16, 64)
	if err != nil || id <= 0 {
		return 0, usagef("lease ID %q: want the hex ID lease grant prints", s)
	}
	return id, nil
}
