package gateway

import (
	"context"
	"slices"
	"time"
)

// Sync replaces the client's endpoints with the client URLs of the cluster's
// voting members, as the member list reports them, so that members added later
// are used and removed ones dropped. Endpoints that stay keep their state.
// Learners are left out: they serve almost nothing. On an error, or an empty
// list, the endpoints stay as they were.
func (c *Client) Sync(ctx context.Context) error {
	ml, err := c.MemberList(ctx)
	if err != nil {
		return err
	}
	var urls []string
	for _, m := range ml.Members {
		if m.IsLearner {
			continue
		}
		for _, u := range m.ClientURLs {
			base, err := parseEndpoint(u)
			if err == nil && !slices.Contains(urls, base) {
				urls = append(urls, base)
			}
		}
	}
	if len(urls) == 0 {
		return localError("sync", ErrNoClientURLs, "the member list names no client URL; the endpoints stay as they were")
	}
	old := *c.eps.Load()
	eps := make([]*endpoint, 0, len(urls))
	for _, u := range urls {
		i := slices.IndexFunc(old, func(ep *endpoint) bool { return ep.base == u })
		if i >= 0 {
			eps = append(eps, old[i])
		} else {
			eps = append(eps, newEndpoint(u))
		}
	}
	c.eps.Store(&eps)
	return nil
}

func (c *Client) syncLoop(ctx context.Context, every time.Duration) {
	defer close(c.syncDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Sync(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("etcd endpoint sync failed", "err", err)
			}
		}
	}
}
