package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// streamDecoder reads the gateway's streamed replies: a sequence of JSON objects,
// each {"result":{…}} or, mid-stream, a final {"error":{…}}. Objects may span
// reads and chunks, and whitespace may stand between them; json.Decoder handles
// both. It never assumes one object per read.
type streamDecoder struct {
	dec      *json.Decoder
	m        *meter // bounds each message; nil: no bound
	op       string
	endpoint string
}

// newStreamDecoder reads messages from r; with max >= 0, one message (with what
// the decoder reads ahead of it) may not exceed max bytes.
func newStreamDecoder(r io.Reader, max int64, op, endpoint string) *streamDecoder {
	d := &streamDecoder{op: op, endpoint: endpoint}
	if max >= 0 {
		d.m = &meter{r: r, max: max}
		r = d.m
	}
	d.dec = json.NewDecoder(r)
	return d
}

// next decodes the next message's result into result. It returns io.EOF when the
// stream ended cleanly between messages, a *Error for a mid-stream error object,
// and a *Error wrapping ErrMalformedResponse or the read error otherwise.
func (d *streamDecoder) next(result any) error {
	var msg struct {
		Result json.RawMessage `json:"result"`
		Error  *streamError    `json:"error"`
	}
	if d.m != nil {
		d.m.reset()
	}
	if err := d.dec.Decode(&msg); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		if errors.Is(err, errTooLarge) {
			return &Error{Op: d.op, Endpoint: d.endpoint, kind: ErrReplyTooLarge,
				Message: fmt.Sprintf("stream message larger than %d bytes (Config.MaxReplyBytes); not read", d.m.max)}
		}
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if errors.As(err, &syn) || errors.As(err, &typ) {
			return &Error{Op: d.op, Endpoint: d.endpoint, Message: "malformed stream message", Err: err, kind: ErrMalformedResponse}
		}
		// io.ErrUnexpectedEOF (cut mid-object) and read errors: the connection
		// broke.
		return transportError(d.op, d.endpoint, err)
	}
	if msg.Error != nil {
		return msg.Error.toError(d.op, d.endpoint)
	}
	if msg.Result == nil {
		return &Error{Op: d.op, Endpoint: d.endpoint, Message: "stream message without result or error", kind: ErrMalformedResponse}
	}
	if err := json.Unmarshal(msg.Result, result); err != nil {
		return &Error{Op: d.op, Endpoint: d.endpoint, Message: "malformed stream result", Err: err, kind: ErrMalformedResponse}
	}
	return nil
}

// stream posts body to a streaming call and hands the reply to read; it closes
// the reply when read returns.
func (c *Client) stream(ctx context.Context, r rpc, body []byte, read func(*streamDecoder) error) error {
	return c.onEndpoints(ctx, r, func(ep *endpoint) error {
		return c.withAuth(ctx, func(token string) error {
			hr, err := c.send(ctx, ep, r.path, body, nil, token)
			if err != nil {
				return err
			}
			defer closeBody(hr)
			return read(newStreamDecoder(hr.Body, c.maxReply, r.path, ep.base))
		})
	})
}

// closeBody drains a little of what is left, so that a finished reply's connection
// can be reused, and closes it. A stream cut short is not drained: its context is
// cancelled and its connection is dropped.
func closeBody(hr *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(hr.Body, 4<<10))
	hr.Body.Close()
}
