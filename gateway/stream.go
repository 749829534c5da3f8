package gateway

import (
	"encoding/json"
	"errors"
	"io"
)

// streamDecoder reads the gateway's streamed replies: a sequence of JSON objects,
// each {"result":{…}} or, mid-stream, a final {"error":{…}}. Objects may span
// reads and chunks, and whitespace may stand between them; json.Decoder handles
// both. It never assumes one object per read.
type streamDecoder struct {
	dec      *json.Decoder
	op       string
	endpoint string
}

func newStreamDecoder(r io.Reader, op, endpoint string) *streamDecoder {
	return &streamDecoder{dec: json.NewDecoder(r), op: op, endpoint: endpoint}
}

// next decodes the next message's result into result. It returns io.EOF when the
// stream ended cleanly between messages, a *Error for a mid-stream error object,
// and a *Error wrapping ErrMalformedResponse or the read error otherwise.
func (d *streamDecoder) next(result any) error {
	var msg struct {
		Result json.RawMessage `json:"result"`
		Error  *streamError    `json:"error"`
	}
	if err := d.dec.Decode(&msg); err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
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
