package testutil

import (
	"context"
	"testing"
	"time"
)

// Async runs f(ctx) in a goroutine; its result arrives on the channel.
func Async(ctx context.Context, f func(context.Context) error) chan error {
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	return done
}

// Pending fails t if done delivers within d (0: if it has delivered already):
// what should still be waiting.
func Pending(t testing.TB, what string, done chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) while it should wait", what, err)
	default:
	}
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) while it should wait", what, err)
	case <-timer.C:
	}
}

// WaitFor polls cond every millisecond until it holds, failing the test if
// ctx ends first: for a state only a poll can see (how many waiters have
// queued).
func WaitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}
