package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is one change to a watched key.
type Event struct {
	// Type says whether the key was put or deleted.
	Type EventType `json:"type"`
	// Kv is the key after the change; for a delete, only Key and ModRevision are
	// set.
	Kv KeyValue `json:"kv"`
	// PrevKv is the key before the change, when the watch has WithPrevKV.
	PrevKv *KeyValue `json:"prev_kv"`
}

// IsCreate reports whether the event created its key.
func (e *Event) IsCreate() bool { return e.Type == EventPut && e.Kv.CreateRevision == e.Kv.ModRevision }

// WatchResponse is one batch of events, all from complete revisions, in revision
// order. A response without events is a progress notification: nothing in the
// watched range changed up to Header.Revision.
type WatchResponse struct {
	// Header carries the revision the response is complete up to.
	Header Header
	// Events are the changes, in revision order; none in a progress notification.
	Events []Event
}

// IsProgressNotify reports whether the response carries no events.
func (r *WatchResponse) IsProgressNotify() bool { return len(r.Events) == 0 }

type wireWatchResponse struct {
	// Header is the reply's header: the revision it was served at, and which member served it.
	Header          Header  `json:"header"`
	WatchID         int64   `json:"watch_id,string"`
	Created         bool    `json:"created"`
	Canceled        bool    `json:"canceled"`
	CompactRevision int64   `json:"compact_revision,string"`
	CancelReason    string  `json:"cancel_reason"`
	Fragment        bool    `json:"fragment"`
	Events          []Event `json:"events"`
}

type watchCreateRequest struct {
	Key            []byte   `json:"key"`
	RangeEnd       []byte   `json:"range_end,omitempty"`
	StartRevision  int64    `json:"start_revision,omitempty"`
	ProgressNotify bool     `json:"progress_notify,omitempty"`
	Filters        []string `json:"filters,omitempty"`
	PrevKV         bool     `json:"prev_kv,omitempty"`
	Fragment       bool     `json:"fragment,omitempty"`
}

// Watch is a running watch: a goroutine that reads the server's stream and
// delivers responses on Events. When the connection drops or the member stops
// answering with a retryable error, it opens a new stream at the revision after
// the last one it delivered, so no event is lost or repeated; history compacted
// past that point ends the watch with a *CompactedError instead.
//
// Its methods are safe for concurrent use. Stop it, cancel the context given to
// Client.Watch, or Close the client, to end it; each closes its stream and joins
// its goroutine.
type Watch struct {
	c      *Client
	op     Op
	ctx    context.Context // the watch's: it ends when Stop is called or the caller's ends
	events chan WatchResponse
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	endpoint string       // the member the current stream is on
	next     int64        // the revision the next stream starts at; 0: from now
	cur      *watchStream // the stream being read; nil between streams
	err      error
	stopped  bool
}

// watchStream is one HTTP stream of a watch.
type watchStream struct {
	hr     *http.Response
	dec    *streamDecoder
	ep     *endpoint
	cancel context.CancelFunc

	// Over HTTP/2 the request body stays open, for progress requests.
	wmu sync.Mutex
	pw  *io.PipeWriter // nil over HTTP/1.1
}

func (s *watchStream) close() {
	if s.pw != nil {
		s.pw.Close()
	}
	s.cancel()
	s.hr.Body.Close()
}

// progressRequest is the message that asks for a progress notification.
var progressRequest = []byte(`{"progress_request":{}}`)

// RequestProgress asks the server for a progress notification on this watch: a
// response on Events without events, whose Header.Revision is a revision up to
// which every change in the watched range has been delivered before it. Use it
// to learn that the watch has caught up with a revision read elsewhere (a
// cache that must not serve data older than a Get did) while nothing in the
// range changes. It is clientv3's Watcher.RequestProgress, for one watch.
//
// It returns once the request is on the stream; the notification follows on
// Events. As with clientv3, the server answers only when the watch has caught
// up (it is "synced"): a request that arrives while the server still has older
// events to send is dropped, so ask again if no notification comes.
//
// The request travels on the watch's own stream, which needs one whose request
// body stays open while replies flow: HTTP/2, which etcd's gateway speaks on
// TLS endpoints. Over HTTP/1.1 (plain http:// endpoints, or a proxy that
// speaks only HTTP/1.1) the gateway holds a stream's replies until its request
// body ends, so the body is closed after the watch is created, and
// RequestProgress returns an error matching ErrUnimplemented. Between streams
// (the watch is resuming after a failure) it returns one matching
// ErrUnavailable; on an ended watch, the error that ended it, or ErrClosed
// after Stop.
func (w *Watch) RequestProgress(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return &Error{Op: "watch progress", Err: err}
	}
	if w.ctx.Err() != nil {
		<-w.done // it is ending
		return w.progressUnavailable()
	}
	w.mu.Lock()
	s := w.cur
	w.mu.Unlock()
	if s == nil {
		return w.progressUnavailable()
	}
	if s.pw == nil {
		return &Error{Op: "watch progress", Endpoint: s.ep.base, kind: ErrUnimplemented,
			Message: "the watch's stream is HTTP/1.1, on which etcd's gateway takes no request after the watch's creation; progress requests need HTTP/2 (a TLS endpoint)"}
	}
	s.wmu.Lock()
	_, err := s.pw.Write(progressRequest)
	s.wmu.Unlock()
	if err != nil {
		return w.progressUnavailable()
	}
	return nil
}

// progressUnavailable is RequestProgress's error when the watch has no open
// stream: it ended, or it is resuming.
func (w *Watch) progressUnavailable() error {
	select {
	case <-w.done:
		if err := w.Err(); err != nil {
			return err
		}
		return localError("watch progress", ErrClosed, "the watch was stopped")
	default:
		return localError("watch progress", ErrUnavailable, "the watch's stream ended; it is resuming")
	}
}

const watchBuffer = 64

// Watch watches key, or a range with WithPrefix, WithRange or WithFromKey, from
// now on or from WithRev. Other options: WithPrevKV, WithFilterPut,
// WithFilterDelete, WithProgressNotify, WithFragment, WithRequireLeader.
//
// It returns once the server has confirmed the watch, so every change after the
// returned moment is delivered; an error creating it (an unreachable cluster, a
// refused request) is returned here. Afterwards the watch runs until ctx ends,
// Stop is called, the client is closed or the server ends it; then Events is
// closed and Err tells why. A start revision that is already compacted ends the
// watch at once with a *CompactedError (etcd confirms the watch, then cancels it).
func (c *Client) Watch(ctx context.Context, key string, opts ...Option) (*Watch, error) {
	o := newOp(opGet, key, "", opts)
	if err := o.validate("watch"); err != nil {
		return nil, err
	}
	if c.isClosed() {
		return nil, localError("watch", ErrClosed, "")
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &Watch{
		c:      c,
		op:     c.inNS(o),
		ctx:    wctx,
		events: make(chan WatchResponse, watchBuffer),
		cancel: cancel,
		done:   make(chan struct{}),
		next:   o.rev,
	}
	s, err := w.open(wctx)
	if err != nil {
		cancel()
		return nil, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		s.close()
		cancel()
		return nil, localError("watch", ErrClosed, "")
	}
	c.watches[w] = struct{}{}
	c.mu.Unlock()
	go w.run(wctx, s)
	return w, nil
}

// WatchPrefix watches every key starting with prefix.
func (c *Client) WatchPrefix(ctx context.Context, prefix string, opts ...Option) (*Watch, error) {
	return c.Watch(ctx, prefix, append(opts, WithPrefix())...)
}

// WatchOnce waits for the first event on key (or its range) and returns it;
// etcd3gw's watch_once, with ctx in place of its timeout.
func (c *Client) WatchOnce(ctx context.Context, key string, opts ...Option) (*Event, error) {
	w, err := c.Watch(ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	for resp := range w.Events() {
		if len(resp.Events) > 0 {
			return &resp.Events[0], nil
		}
	}
	if err := w.Err(); err != nil {
		return nil, err
	}
	return nil, localError("watch", ErrClosed, "")
}

// WatchPrefixOnce waits for the first event on any key starting with prefix.
func (c *Client) WatchPrefixOnce(ctx context.Context, prefix string, opts ...Option) (*Event, error) {
	return c.WatchOnce(ctx, prefix, append(opts, WithPrefix())...)
}

// Events delivers the watch's responses in revision order. It is closed when the
// watch ends.
func (w *Watch) Events() <-chan WatchResponse { return w.events }

// Done is closed when the watch has ended and its goroutine has returned.
func (w *Watch) Done() <-chan struct{} { return w.done }

// Err tells why the watch ended: nil after Stop; ctx's error when the context
// ended; an error matching ErrClosed after Client.Close; a *CompactedError when
// the history it needed was compacted; a *Error for anything else the server
// reported (ErrWatchCanceled, ErrPermissionDenied, …). It returns nil while the
// watch is running.
func (w *Watch) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Revision is the revision the watch would resume at: one past the last revision
// delivered (or known, from a progress notification, to hold no event).
func (w *Watch) Revision() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// Stop ends the watch, closes its stream and waits for its goroutine. Responses
// not yet received from Events are dropped: once Stop has returned, a receive
// from Events finds it closed and empty. Stop is safe to call more than once,
// and from the goroutine that reads Events.
func (w *Watch) Stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.cancel()
	<-w.done
	// run closed events before done: this drains what is buffered and ends.
	for range w.events {
	}
}

func (w *Watch) run(ctx context.Context, s *watchStream) {
	var err error
	defer func() {
		w.mu.Lock()
		switch {
		case w.stopped && w.c.isClosed():
			w.err = localError("watch", ErrClosed, "")
		case w.stopped:
			w.err = nil
		case ctx.Err() != nil:
			w.err = ctx.Err()
		default:
			w.err = err
		}
		w.cur = nil
		w.mu.Unlock()
		w.c.mu.Lock()
		delete(w.c.watches, w)
		w.c.mu.Unlock()
		close(w.events)
		close(w.done)
	}()
	for {
		err = w.pump(ctx, s)
		w.mu.Lock()
		w.cur = nil
		w.mu.Unlock()
		s.close()
		if ctx.Err() != nil || !resumable(err) {
			return
		}
		// The member ended the stream, broke the connection or lost its
		// leader: leave it aside and resume on another member if there is one.
		s.ep.markFailed()
		w.c.log.Info("etcd watch interrupted; resuming", "endpoint", s.ep.base, "revision", w.Revision(), "err", err)
		bo := w.c.retry.backoff()
		for {
			s, err = w.open(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil || !resumable(err) {
				return
			}
			t := time.NewTimer(bo.NextBackOff())
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// resumable reports whether a watch that ended with err should open a new
// stream: the resend contract says so for a watch (which is idempotent: it
// starts at the next revision), or the member ended the stream cleanly (it
// shut down).
func resumable(err error) bool {
	return errors.Is(err, io.EOF) || decide(stageOf(err), rpcWatch.idempotent, false) == resend
}

// open starts a stream at w.next and waits for the server to confirm it.
func (w *Watch) open(ctx context.Context) (*watchStream, error) {
	w.mu.Lock()
	start := w.next
	w.mu.Unlock()
	o := &w.op
	req := watchCreateRequest{
		Key: o.key, RangeEnd: o.end, StartRevision: start,
		ProgressNotify: o.progressNotify, PrevKV: o.prevKV, Fragment: o.fragment,
	}
	if o.filterPut {
		req.Filters = append(req.Filters, "NOPUT")
	}
	if o.filterDelete {
		req.Filters = append(req.Filters, "NODELETE")
	}
	body, err := json.Marshal(struct {
		Create watchCreateRequest `json:"create_request"`
	}{req})
	if err != nil {
		return nil, &Error{Op: "watch", Err: err}
	}
	var header http.Header
	if o.requireLeader {
		// Without it, a member that lost its leader keeps the stream open and
		// silent; with it, the member ends the stream with "no leader".
		header = http.Header{"Grpc-Metadata-Hasleader": {"true"}}
	}
	var s *watchStream
	err = w.c.onEndpoints(ctx, rpcWatch, func(ep *endpoint) error {
		return w.c.withAuth(ctx, func(token string) error {
			var err error
			s, err = w.openOn(ctx, ep, body, header, token, start)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openOn starts a stream on ep and reads the server's confirmation.
func (w *Watch) openOn(ctx context.Context, ep *endpoint, body []byte, header http.Header, token string, start int64) (*watchStream, error) {
	if ep.proto.Load() == 0 && strings.HasPrefix(ep.base, "https://") {
		// Learn whether the endpoint speaks HTTP/2 before sending a body
		// that stays open: over HTTP/1.1 its reply would never come.
		if _, err := w.c.version(ctx, ep); err != nil && ep.proto.Load() == 0 {
			return nil, err // no reply at all; a refused one (a proxy without /version) told enough
		}
	}
	var r io.Reader = bytes.NewReader(body)
	var pw *io.PipeWriter
	if ep.proto.Load() == 2 {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		r = io.MultiReader(r, pr)
	}
	sctx, scancel := context.WithCancel(ctx)
	if pw != nil {
		// The HTTP/2 transport notices the end of a request's context only
		// between reads of its body: end the body with it.
		base := scancel
		stop := context.AfterFunc(sctx, func() { pw.CloseWithError(sctx.Err()) })
		scancel = func() { stop(); pw.Close(); base() }
	}
	hr, err := w.c.sendFrom(sctx, ep, rpcWatch.path, r, header, token)
	if err != nil {
		if pw != nil {
			pw.Close()
		}
		scancel()
		return nil, err
	}
	if hr.ProtoMajor != 2 && pw != nil {
		pw.Close() // the endpoint changed protocol: leave it as HTTP/1.1 has it
		pw = nil
	}
	s := &watchStream{hr: hr, dec: newStreamDecoder(hr.Body, w.c.maxReply, "watch", ep.base), ep: ep, cancel: scancel, pw: pw}
	var m wireWatchResponse
	if err := s.dec.next(&m); err != nil {
		s.close()
		if errors.Is(err, io.EOF) {
			err = &Error{Op: "watch", Endpoint: ep.base, Message: "stream ended before the watch was created", Err: io.ErrUnexpectedEOF, kind: ErrUnavailable, stage: stageNoReply}
		}
		return nil, err
	}
	if m.Canceled {
		s.close()
		return nil, w.cancelError(ep, start, &m)
	}
	if !m.Created {
		s.close()
		return nil, &Error{Op: "watch", Endpoint: ep.base, Message: "first message does not confirm the watch", kind: ErrMalformedResponse}
	}
	w.mu.Lock()
	if start == 0 {
		w.next = m.Header.Revision + 1
	}
	w.endpoint = ep.base
	w.cur = s
	w.mu.Unlock()
	return s, nil
}

func (w *Watch) cancelError(ep *endpoint, start int64, m *wireWatchResponse) error {
	if m.CompactRevision > 0 {
		return &CompactedError{Revision: start, CompactRevision: m.CompactRevision}
	}
	e := &Error{Op: "watch", Endpoint: ep.base, Message: m.CancelReason}
	if e.Message == "" {
		e.Message = "watch canceled by the server without a reason"
	}
	if code, _, ok := grpcMessage(m.CancelReason); ok {
		e.Code = code
	}
	e.kind = classify(CodeOK, m.CancelReason)
	e.stage = replyStage(e.kind, m.CancelReason)
	if e.kind == nil {
		e.kind = ErrWatchCanceled
	}
	return e
}

// pump reads the stream and delivers complete responses until the stream ends.
func (w *Watch) pump(ctx context.Context, s *watchStream) error {
	var pending []Event // events of a fragmented response, until its last piece
	for {
		var m wireWatchResponse
		if err := s.dec.next(&m); err != nil {
			return err
		}
		if m.Canceled {
			return w.cancelError(s.ep, w.Revision(), &m)
		}
		if m.Created {
			continue
		}
		if m.Fragment {
			pending = append(pending, m.Events...)
			continue
		}
		events := m.Events
		if pending != nil {
			events = append(pending, events...)
			pending = nil
		}
		var next int64
		if len(events) > 0 {
			next = events[len(events)-1].Kv.ModRevision + 1
		} else {
			// A progress notification: nothing changed in range up to the
			// header's revision.
			next = m.Header.Revision + 1
		}
		w.mu.Lock()
		if next < w.next && len(events) > 0 {
			w.mu.Unlock()
			return &Error{Op: "watch", Endpoint: s.ep.base, kind: ErrMalformedResponse,
				Message: fmt.Sprintf("event at revision %d after revision %d was delivered", next-1, w.next-1)}
		}
		if next > w.next {
			w.next = next
		}
		w.mu.Unlock()
		w.c.stripEvents(events)
		select {
		case w.events <- WatchResponse{Header: m.Header, Events: events}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// EventType is the kind of a watch event.
type EventType int

// Event types.
const (
	EventPut EventType = iota
	EventDelete
)

// String returns "PUT" or "DELETE".
func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// UnmarshalJSON accepts the enum's name or number.
func (t *EventType) UnmarshalJSON(b []byte) error {
	n, err := unmarshalEnum(b, map[string]int{"PUT": 0, "DELETE": 1})
	*t = EventType(n)
	return err
}
