package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// report is everything one bench run measured.
type report struct {
	cfg       config
	version   string
	cpus      int
	goVersion string
	kv        []kvRow
	locks     pair
	locksTLS  pair // the lock section on a member serving https
	failover  pair
	queue     []queueRow
	mem       []memRow
}

// lockRows writes the lock section's two rows; where says on what kind of
// member they were measured.
func lockRows(b *strings.Builder, l pair, where string) {
	fmt.Fprintf(b, "| lock hand-offs/s, %d contenders%s | %.0f | %.0f | %.2f× |\n", contenders, where, l.theirs.rate(), l.ours.rate(), l.ours.rate()/l.theirs.rate())
	fmt.Fprintf(b, "| new TCP connections per hand-off%s | %.3f | %.3f | |\n", where, perHandoff(l.theirs), perHandoff(l.ours))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }

// markdown renders the report as one markdown document.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "etcd %s, %d CPUs, %s; medians of %d rounds of %v, both clients interleaved in one process.\n\n",
		r.version, r.cpus, r.goVersion, r.cfg.rounds, r.cfg.dur)
	if len(r.kv) > 0 {
		b.WriteString("| op | callers | clientv3 ops/s | etcdgw ops/s | ratio (rounds' lowest–highest) | p50 ms clientv3 / etcdgw | p99 ms clientv3 / etcdgw | client CPU µs/op clientv3 / etcdgw | server CPU µs/op clientv3 / etcdgw | ops per request clientv3 / etcdgw |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, k := range r.kv {
			fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.2f× (%.2f–%.2f) | %s / %s | %s / %s | %s / %s | %s / %s | %.1f / %.1f |\n",
				k.op, k.callers, k.theirs.rate(), k.ours.rate(), k.ours.rate()/k.theirs.rate(), k.lo, k.hi,
				ms(k.theirs.pct(.5)), ms(k.ours.pct(.5)), ms(k.theirs.pct(.99)), ms(k.ours.pct(.99)),
				us(k.theirs.perOp(k.theirs.clientCPU)), us(k.ours.perOp(k.ours.clientCPU)),
				us(k.theirs.perOp(k.theirs.serverCPU)), us(k.ours.perOp(k.ours.serverCPU)),
				k.theirs.perRequest(), k.ours.perRequest())
		}
		if slices.ContainsFunc(r.kv, func(k kvRow) bool { return k.op == "txn-coalesce" }) {
			b.WriteString("\ntxn-coalesce is txn with etcdgw's transaction marked Txn.Coalesce (it may share a request, and its revision, with others); clientv3's is the same plain txn.\n")
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "One caller, the three taking turns request by request (%d rounds of %v, pooled):\n\n", r.cfg.rounds, r.cfg.dur)
		b.WriteString("| one caller | p50 ms clientv3 | p50 ms etcdgw | etcdgw / clientv3 | p50 ms bare HTTP request to the gateway | etcdgw / bare |\n|---|---:|---:|---:|---:|---:|\n")
		for _, k := range r.kv {
			t := k.turns
			if k.callers != 1 || t.bare.ops == 0 {
				continue
			}
			ours, theirs, floor := t.ours.pct(.5), t.theirs.pct(.5), t.bare.pct(.5)
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f× | %s | %.2f× |\n", k.op, ms(theirs), ms(ours),
				float64(ours)/float64(theirs), ms(floor), float64(ours)/float64(floor))
		}
		b.WriteString("\n")
	}
	if r.locks.ours.ops > 0 {
		b.WriteString("| coordination | clientv3 | etcdgw | ratio |\n|---|---:|---:|---:|\n")
		lockRows(&b, r.locks, "")
		if r.locksTLS.ours.ops > 0 {
			lockRows(&b, r.locksTLS, ", over TLS")
		}
		if f := r.failover; f.ours.ops > 0 {
			fmt.Fprintf(&b, "| election failover after Resign, p50 ms (3 members) | %s | %s | |\n", ms(f.theirs.pct(.5)), ms(f.ours.pct(.5)))
		}
		for _, q := range r.queue {
			fmt.Fprintf(&b, "| work queue items/s, %d consumers, %d member(s), Claim and Ack (clientv3: recipes.Queue, at most once) | %.0f | %.0f | %.2f× |\n",
				consumers, q.servers, q.theirs.rate(), q.ours.rate(), q.ours.rate()/q.theirs.rate())
			fmt.Fprintf(&b, "| work queue items/s, %d consumers, %d member(s), ClaimN(%d) and AckAll | %.0f | %.0f | %.2f× |\n",
				consumers, q.servers, claimN, q.theirs.rate(), q.batched.rate(), q.batched.rate()/q.theirs.rate())
			if len(q.wakeups) > 0 {
				var ws []string
				for i, w := range q.wakeups {
					ws = append(ws, fmt.Sprintf("%d: %.2f", idleConsumers[i], w))
				}
				fmt.Fprintf(&b, "| work-queue wakeups per item, by idle consumers | | %s | |\n", strings.Join(ws, ", "))
			}
		}
		b.WriteString("\n")
	}
	if len(r.mem) > 0 {
		fmt.Fprintf(&b, "| member memory after %v of %d callers putting, a fresh member each | puts/s | member heap MB | member resident MB |\n|---|---:|---:|---:|\n", memDur, memCallers)
		for _, m := range r.mem {
			fmt.Fprintf(&b, "| %s | %.0f | %d | %d |\n", m.client, m.rate, m.heap>>20, m.rss>>20)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// plot draws ops/s against callers (log scale) for each op and client.
func (r *report) plot() string {
	const w, h, left, right, top, bottom = 720, 420, 70, 150, 30, 50
	var xs []int
	maxY := 0.0
	for _, k := range r.kv {
		if len(xs) == 0 || xs[len(xs)-1] < k.callers {
			xs = append(xs, k.callers)
		}
		maxY = math.Max(maxY, math.Max(k.ours.rate(), k.theirs.rate()))
	}
	maxY = math.Ceil(maxY/5000) * 5000
	lx := func(n int) float64 {
		lo, hi := math.Log2(float64(xs[0])), math.Log2(float64(xs[len(xs)-1]))
		if hi == lo {
			return left
		}
		return left + (math.Log2(float64(n))-lo)/(hi-lo)*(w-left-right)
	}
	ly := func(v float64) float64 { return top + (1-v/maxY)*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">ops/s against callers, etcd %s, one member</text>`+"\n", left, r.version)
	for i := 0; i <= 5; i++ {
		v := maxY * float64(i) / 5
		y := ly(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.0f</text>`+"\n", left, w-right, y, y, left-6, y+4, v)
	}
	for _, x := range xs {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", lx(x), h-bottom+18, x)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">callers</text>`+"\n", (w-right+left)/2, h-12)
	colors := map[string]string{"put": "#1f77b4", "get": "#2ca02c", "txn": "#d62728", "txn-coalesce": "#9467bd"}
	ly0 := top
	for _, op := range r.cfg.ops {
		for _, ours := range []bool{true, false} {
			var pts []string
			for _, k := range r.kv {
				if k.op != op {
					continue
				}
				s := k.theirs
				if ours {
					s = k.ours
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", lx(k.callers), ly(s.rate())))
			}
			dash, who := "", "etcdgw"
			if !ours {
				dash, who = ` stroke-dasharray="6 4"`, "clientv3"
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", colors[op], dash, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s %s</text>`+"\n",
				w-right+10, w-right+40, ly0, ly0, colors[op], dash, w-right+46, ly0+4, op, who)
			ly0 += 18
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}
