package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
)

// Hand-written decoding of the replies on the hot path (GetResponse,
// PutResponse, DeleteResponse, TxnResponse): a reader over the reply's bytes
// that fills the structs directly, where encoding/json reflects over them. It
// reads what etcd's gateway writes and anything encoding/json would read the
// same way; on anything else (or any doubt) it gives up, and the reply is
// decoded by encoding/json, whose error, if any, is the one reported.
// FuzzFastDecode holds it to encoding/json's result on every input both
// accept.

// errSlow sends a reply to encoding/json.
var errSlow = errors.New("not for the fast decoder")

// fastDecoder is a reply the reader fills.
type fastDecoder interface {
	decodeFast(r *reader) error
}

// decodeReply fills resp from b: by hand when resp allows, else (or when the
// reader gives up) with encoding/json.
func decodeReply(b []byte, resp any) error {
	if f, ok := resp.(fastDecoder); ok {
		r := reader{b: b}
		if err := f.decodeFast(&r); err == nil && r.end() {
			return nil
		}
		// Start again from zero: the reader may have filled part of resp.
		resetReply(resp)
	}
	return json.Unmarshal(b, resp)
}

func resetReply(resp any) {
	switch r := resp.(type) {
	case *GetResponse:
		*r = GetResponse{}
	case *PutResponse:
		*r = PutResponse{}
	case *DeleteResponse:
		*r = DeleteResponse{}
	case *TxnResponse:
		*r = TxnResponse{}
	}
}

// reader reads JSON values from b.
type reader struct {
	b []byte
	i int
}

func (r *reader) ws() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// end reports whether only white space is left.
func (r *reader) end() bool { r.ws(); return r.i == len(r.b) }

func (r *reader) peek() byte {
	r.ws()
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

func (r *reader) expect(c byte) error {
	if r.peek() != c {
		return errSlow
	}
	r.i++
	return nil
}

// null consumes a null and reports true, or reports false.
func (r *reader) null() bool {
	if r.peek() == 'n' && bytes.HasPrefix(r.b[r.i:], []byte("null")) {
		r.i += 4
		return true
	}
	return false
}

// object calls field for each member of an object, with the member's name
// (compared case-insensitively, as encoding/json does); field must consume
// the value. A null is an object without members.
func (r *reader) object(field func(name []byte) error) error {
	if r.null() {
		return nil
	}
	if err := r.expect('{'); err != nil {
		return err
	}
	if r.peek() == '}' {
		r.i++
		return nil
	}
	for {
		name, err := r.str()
		if err != nil {
			return err
		}
		if err := r.expect(':'); err != nil {
			return err
		}
		if err := field(name); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return nil
		default:
			return errSlow
		}
	}
}

// array calls elem for each element; a null is an empty array.
func (r *reader) array(elem func() error) error {
	if r.null() {
		return nil
	}
	if err := r.expect('['); err != nil {
		return err
	}
	if r.peek() == ']' {
		r.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return nil
		default:
			return errSlow
		}
	}
}

// str returns a string's contents. A string with escapes goes to
// encoding/json; etcd's gateway writes none in the fields read here.
func (r *reader) str() ([]byte, error) {
	if err := r.expect('"'); err != nil {
		return nil, err
	}
	start := r.i
	for r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c == '"':
			r.i++
			return r.b[start : r.i-1], nil
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, errSlow
		}
		r.i++
	}
	return nil, errSlow
}

// int reads an int64 written as a quoted decimal (proto3 JSON; the ",string"
// fields). A null leaves *dst as it is.
func (r *reader) int(dst *int64) error {
	if r.null() {
		return nil
	}
	s, err := r.str()
	if err != nil || !decimal(s) {
		return errSlow
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return errSlow
	}
	*dst = n
	return nil
}

func (r *reader) uint(dst *uint64) error {
	if r.null() {
		return nil
	}
	s, err := r.str()
	if err != nil || !decimal(s) || s[0] == '-' {
		return errSlow
	}
	n, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return errSlow
	}
	*dst = n
	return nil
}

// decimal reports a JSON integer literal: an optional minus, then 0 or digits
// not starting with 0.
func decimal(s []byte) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || s[0] == '0' && len(s) > 1 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (r *reader) bool(dst *bool) error {
	switch {
	case r.null():
	case bytes.HasPrefix(r.b[r.i:], []byte("true")):
		r.i += 4
		*dst = true
	case bytes.HasPrefix(r.b[r.i:], []byte("false")):
		r.i += 5
		*dst = false
	default:
		return errSlow
	}
	return nil
}

// skip consumes a value of a member the reader does not know. Only scalars
// and nested values of known shape are skipped by hand; anything else goes to
// encoding/json.
func (r *reader) skip() error {
	switch c := r.peek(); {
	case c == '"':
		_, err := r.str()
		return err
	case c == '{':
		return r.object(func([]byte) error { return r.skip() })
	case c == '[':
		return r.array(r.skip)
	case c == 'n':
		if r.null() {
			return nil
		}
	case c == 't' || c == 'f':
		var b bool
		return r.bool(&b)
	case c == '-' || c >= '0' && c <= '9':
		start := r.i
		for r.i < len(r.b) && bytes.IndexByte([]byte("+-.eE0123456789"), r.b[r.i]) >= 0 {
			r.i++
		}
		if !json.Valid(r.b[start:r.i]) {
			return errSlow
		}
		return nil
	}
	return errSlow
}

func is(name []byte, field string) bool { return bytes.EqualFold(name, []byte(field)) }

func (h *Header) decodeFast(r *reader) error {
	return r.object(func(name []byte) error {
		switch {
		case is(name, "cluster_id"):
			return r.uint(&h.ClusterID)
		case is(name, "member_id"):
			return r.uint(&h.MemberID)
		case is(name, "revision"):
			return r.int(&h.Revision)
		case is(name, "raft_term"):
			return r.uint(&h.RaftTerm)
		}
		return r.skip()
	})
}

func (kv *KeyValue) decodeFast(r *reader) error {
	// The key and the value are decoded after the object, into one allocation.
	var key, val text64
	err := r.object(func(name []byte) error {
		switch {
		case is(name, "key"):
			return r.text64(&key)
		case is(name, "value"):
			return r.text64(&val)
		case is(name, "create_revision"):
			return r.int(&kv.CreateRevision)
		case is(name, "mod_revision"):
			return r.int(&kv.ModRevision)
		case is(name, "version"):
			return r.int(&kv.Version)
		case is(name, "lease"):
			return r.int(&kv.Lease)
		}
		return r.skip()
	})
	if err != nil {
		return err
	}
	return decodePair(key, val, &kv.Key, &kv.Value)
}

// text64 is a base64 field read and not yet decoded.
type text64 struct {
	seen bool   // the field was there (the last of its name counts)
	text []byte // its text in the reply; nil for a null
}

func (r *reader) text64(dst *text64) error {
	dst.seen = true
	if r.null() {
		dst.text = nil
		return nil
	}
	s, err := r.str64()
	dst.text = s
	return err
}

// str64 returns a base64 string's text, found with one search for its closing
// quote instead of a look at each byte: decodePair's base64 decoding refuses
// whatever else a JSON string could hold (an escape's backslash, a control or
// non-ASCII byte), and errSlow then gives the reply to encoding/json. The line
// breaks that the decoder skips are looked for here.
func (r *reader) str64() ([]byte, error) {
	if err := r.expect('"'); err != nil {
		return nil, err
	}
	n := bytes.IndexByte(r.b[r.i:], '"')
	if n < 0 {
		return nil, errSlow
	}
	s := r.b[r.i : r.i+n]
	if bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		return nil, errSlow
	}
	r.i += n + 1
	return s, nil
}

// decodePair decodes two base64 fields as encoding/json decodes a []byte (a
// null makes nil), each into its own part of one allocation. A field not seen
// leaves its destination as it is.
func decodePair(a, b text64, da, db *[]byte) error {
	na := base64.StdEncoding.DecodedLen(len(a.text))
	buf := make([]byte, na+base64.StdEncoding.DecodedLen(len(b.text)))
	if err := a.decodeTo(buf[:na], da); err != nil {
		return err
	}
	return b.decodeTo(buf[na:], db)
}

// decodeTo decodes t into buf and points *dst at the result.
func (t text64) decodeTo(buf []byte, dst *[]byte) error {
	switch {
	case !t.seen:
	case t.text == nil:
		*dst = nil
	default:
		n, err := base64.StdEncoding.Decode(buf, t.text)
		if err != nil {
			return errSlow
		}
		*dst = buf[:n:n]
	}
	return nil
}

// kvs reads an array of KeyValue, as encoding/json fills a slice: a null
// leaves it nil, an empty array makes it empty.
func (r *reader) kvs(dst *[]KeyValue) error {
	if r.null() {
		*dst = nil
		return nil
	}
	out := (*dst)[:0] // a GetResponse's room for one (newGetResponse)
	if out == nil {
		out = []KeyValue{}
	}
	err := r.array(func() error {
		out = append(out, KeyValue{})
		return out[len(out)-1].decodeFast(r)
	})
	*dst = out
	return err
}

// newGetResponse returns a GetResponse with room for one key in the same
// allocation: most reads find one.
func newGetResponse() *GetResponse {
	g := new(struct {
		r   GetResponse
		one [1]KeyValue
	})
	g.r.Kvs = g.one[:0]
	return &g.r
}

// kvPtr reads an optional KeyValue.
func (r *reader) kvPtr(dst **KeyValue) error {
	if r.null() {
		*dst = nil
		return nil
	}
	if *dst == nil {
		*dst = new(KeyValue)
	}
	return (*dst).decodeFast(r)
}

func (g *GetResponse) decodeFast(r *reader) error {
	_, err := g.decode(r)
	return err
}

// decode is decodeFast, and reports whether the reply had a kvs field.
func (g *GetResponse) decode(r *reader) (sawKvs bool, err error) {
	err = r.object(func(name []byte) error {
		switch {
		case is(name, "header"):
			return g.Header.decodeFast(r)
		case is(name, "kvs"):
			sawKvs = true
			return r.kvs(&g.Kvs)
		case is(name, "more"):
			return r.bool(&g.More)
		case is(name, "count"):
			return r.int(&g.Count)
		}
		return r.skip()
	})
	return sawKvs, err
}

func (p *PutResponse) decodeFast(r *reader) error {
	return r.object(func(name []byte) error {
		switch {
		case is(name, "header"):
			return p.Header.decodeFast(r)
		case is(name, "prev_kv"):
			return r.kvPtr(&p.PrevKv)
		}
		return r.skip()
	})
}

func (d *DeleteResponse) decodeFast(r *reader) error {
	return r.object(func(name []byte) error {
		switch {
		case is(name, "header"):
			return d.Header.decodeFast(r)
		case is(name, "deleted"):
			return r.int(&d.Deleted)
		case is(name, "prev_kvs"):
			return r.kvs(&d.PrevKvs)
		}
		return r.skip()
	})
}

func (t *TxnResponse) decodeFast(r *reader) error {
	return r.object(func(name []byte) error {
		switch {
		case is(name, "header"):
			return t.Header.decodeFast(r)
		case is(name, "succeeded"):
			return r.bool(&t.Succeeded)
		case is(name, "responses"):
			if r.null() {
				t.Responses = nil
				return nil
			}
			out := []OpResponse{}
			err := r.array(func() error {
				out = append(out, OpResponse{})
				return out[len(out)-1].decodeFast(r)
			})
			t.Responses = out
			return err
		}
		return r.skip()
	})
}

func (o *OpResponse) decodeFast(r *reader) error {
	return r.object(func(name []byte) error {
		switch {
		case is(name, "response_range"):
			if o.Get != nil || r.peek() == 'n' {
				return decodeInto(r, &o.Get)
			}
			o.Get = newGetResponse()
			sawKvs, err := o.Get.decode(r)
			if !sawKvs {
				o.Get.Kvs = nil // the room untouched: nil, as encoding/json leaves it
			}
			return err
		case is(name, "response_put"):
			return decodeInto(r, &o.Put)
		case is(name, "response_delete_range"):
			return decodeInto(r, &o.Delete)
		case is(name, "response_txn"):
			return decodeInto(r, &o.Txn)
		}
		return r.skip()
	})
}

// decodeInto reads an optional response into *dst, as encoding/json fills a
// pointer field.
func decodeInto[T any, P interface {
	*T
	fastDecoder
}](r *reader, dst *P) error {
	if r.null() {
		*dst = nil
		return nil
	}
	if *dst == nil {
		*dst = new(T)
	}
	return (*dst).decodeFast(r)
}
