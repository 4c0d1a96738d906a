package policy

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/simgate/simgate/otp"
)

// Records are stored in a compact binary form: a version byte, then each
// field in a fixed order, integers as varints, strings and bytes with
// their length first. There are millions of them, and a decision decodes
// several. Records written as JSON by earlier versions (they start with
// '{') are still read.
const recordV1 = 1

// record is what every stored record is: it encodes itself after b, and
// decodes itself (an absent value, nil, resets it and is an error).
type record interface {
	marshal(b []byte) []byte
	unmarshal(b []byte) error
}

// errRecord is the error of a record that cannot be decoded.
var errRecord = errors.New("malformed policy record")

// encoder appends a record's fields to b.
type encoder struct{ b []byte }

func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(s []byte) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// decoder reads what encoder wrote; the first failure sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// small reads a non-negative integer of at most limit.
func (d *decoder) small(limit int) int {
	v := d.uint()
	if v > uint64(limit) {
		d.fail()
		return 0
	}
	return int(v)
}

// length reads the length of what follows: at most one element per
// byte that remains after it.
func (d *decoder) length() int {
	v := d.uint()
	if v > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) fail() { d.err, d.b = errRecord, nil }

func (d *decoder) bytes() []byte {
	n := d.length()
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// raw reads exactly len(p) bytes into p.
func (d *decoder) raw(p []byte) {
	if len(d.b) < len(p) {
		d.fail()
		return
	}
	copy(p, d.b)
	d.b = d.b[len(p):]
}

func (d *decoder) str() string { return string(d.bytes()) }

// version checks a record's version byte; legacy is true for a JSON
// record.
func (d *decoder) version() (legacy bool) {
	switch {
	case len(d.b) > 0 && d.b[0] == '{':
		return true
	case len(d.b) > 0 && d.b[0] == recordV1:
		d.b = d.b[1:]
	default:
		d.fail()
	}
	return false
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return d.err
}

// states are the job states a record names by their index (a byte);
// any other is written out.
var states = [...]otp.State{stateQueuing, otp.StateAccepted, otp.StateSent, otp.StateDelivered,
	otp.StateFailed, otp.StateExpired, otp.StateRejected, otp.StateSuperseded}

func (r *jobRecord) marshal(b []byte) []byte {
	e := encoder{append(b, recordV1)}
	if i := slices.Index(states[:], r.State); i >= 0 {
		e.uint(uint64(i))
	} else {
		e.uint(uint64(len(states)))
		e.str(string(r.State))
	}
	e.str(r.Reason)
	e.int(r.At)
	e.hash(r.Body, "")
	e.uint(r.Seq)
	e.uint(uint64(r.Conflicts))
	e.hash(r.Number, numberPrefix)
	e.uint(uint64(r.Attempts))
	flags := uint64(0)
	if r.Resend {
		flags |= 1
	}
	e.uint(flags)
	e.bytes(r.Event)
	return e.b
}

func (r *jobRecord) unmarshal(b []byte) error {
	*r = jobRecord{}
	d := decoder{b: b}
	if d.version() {
		return json.Unmarshal(b, r)
	}
	if i := d.small(len(states)); i < len(states) {
		r.State = states[i]
	} else {
		r.State = otp.State(d.str())
	}
	r.Reason = d.str()
	r.At = d.int()
	r.Body = d.hash("")
	r.Seq = d.uint()
	r.Conflicts = d.small(1 << 20)
	r.Number = d.hash(numberPrefix)
	r.Attempts = d.small(1 << 20)
	r.Resend = d.uint()&1 != 0
	if ev := d.bytes(); len(ev) > 0 {
		r.Event = json.RawMessage(ev)
	}
	return d.done()
}

// hash writes s, a keyed hash in hex after prefix, as its bytes (half the
// size); anything else, or nothing, as a string.
func (e *encoder) hash(s, prefix string) {
	var raw [hashHex]byte
	if h, ok := strings.CutPrefix(s, prefix); ok && len(h) == 2*hashHex && decodeLowerHex(raw[:], h) {
		e.b = append(append(e.b, 1), raw[:]...)
		return
	}
	e.uint(0)
	e.str(s)
}

// decodeLowerHex decodes h, lower-case hex of len(dst) bytes, into dst,
// and reports whether it was.
func decodeLowerHex(dst []byte, h string) bool {
	bad := byte(0)
	for i := range dst {
		hi, lo := unhexTable[h[2*i]], unhexTable[h[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo&0xf
	}
	return bad&0xf0 == 0
}

// unhexTable maps a lower-case hex digit to its value, anything else to
// 0xff.
var unhexTable = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c] = c - 'a' + 10
	}
	return t
}()

func (d *decoder) hash(prefix string) string {
	if d.small(1) == 0 {
		return d.str()
	}
	var raw [hashHex]byte
	d.raw(raw[:])
	if d.err != nil {
		return ""
	}
	return prefix + hex.EncodeToString(raw[:])
}

// legacyNumber is a number record as earlier versions wrote it (JSON).
type legacyNumber struct {
	Sends []int64 `json:"s"`
	Codes []struct {
		ID  string `json:"i"`
		At  int64  `json:"t"`
		Exp int64  `json:"e"`
	} `json:"c"`
	Last   string `json:"j"`
	LastAt int64  `json:"k"`
}

func (r *numberRecord) marshal(b []byte) []byte {
	e := encoder{append(b, recordV1)}
	e.uint(uint64(len(r.Sends)))
	prev := int64(0)
	for _, t := range r.Sends {
		e.int(t - prev) // ascending: small deltas
		prev = t
	}
	e.uint(uint64(len(r.Codes)))
	for _, c := range r.Codes {
		e.str(c.ID)
		e.int(c.At - prev)
		e.int(c.Exp - c.At)
		prev = c.At
	}
	e.uint(r.Last)
	e.int(r.LastAt - prev)
	return e.b
}

func (r *numberRecord) unmarshal(b []byte) error {
	sends, codes := r.Sends[:0], r.Codes[:0]
	*r = numberRecord{}
	d := decoder{b: b}
	if d.version() {
		var l legacyNumber
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		r.Sends = append(sends, l.Sends...)
		r.Codes = codes
		// The newest code ("l") was always the last one.
		for _, c := range l.Codes {
			r.Codes = append(r.Codes, codeEntry{ID: c.ID, At: c.At, Exp: c.Exp})
		}
		r.Last, r.LastAt = idTag(l.Last), l.LastAt
		return nil
	}
	prev := int64(0)
	for n := d.length(); n > 0; n-- {
		prev += d.int()
		sends = append(sends, prev)
	}
	for n := d.length(); n > 0; n-- {
		c := codeEntry{ID: d.str()}
		c.At = prev + d.int()
		c.Exp = c.At + d.int()
		prev = c.At
		codes = append(codes, c)
	}
	r.Sends, r.Codes = sends, codes
	r.Last = d.uint()
	r.LastAt = prev + d.int()
	return d.done()
}

// legacyPrefix is a prefix record as earlier versions wrote it (JSON).
type legacyPrefix struct {
	Blocked int64            `json:"b"`
	Nums    map[string]int64 `json:"n"`
}

func (r *prefixRecord) marshal(b []byte) []byte {
	e := encoder{append(b, recordV1)}
	e.int(r.Blocked)
	e.uint(uint64(len(r.Nums)))
	for _, n := range r.Nums {
		e.b = append(e.b, n.Tag[:]...)
		e.int(n.At)
	}
	return e.b
}

func (r *prefixRecord) unmarshal(b []byte) error {
	nums := r.Nums[:0]
	*r = prefixRecord{}
	d := decoder{b: b}
	if d.version() {
		var l legacyPrefix
		if err := json.Unmarshal(b, &l); err != nil {
			return err
		}
		r.Blocked, r.Nums = l.Blocked, nums
		for h, at := range l.Nums {
			var n prefixNumber
			raw, err := hex.DecodeString(h)
			if err != nil || len(raw) != len(n.Tag) {
				return fmt.Errorf("%w: prefix number %q", errRecord, h)
			}
			copy(n.Tag[:], raw)
			n.At = at
			r.Nums = append(r.Nums, n)
		}
		return nil
	}
	r.Blocked = d.int()
	for n := d.length(); n > 0; n-- {
		var pn prefixNumber
		d.raw(pn.Tag[:])
		pn.At = d.int()
		nums = append(nums, pn)
	}
	r.Nums = nums
	return d.done()
}

func (r *counterRecord) marshal(b []byte) []byte {
	e := encoder{append(b, recordV1)}
	e.int(r.First)
	e.uint(uint64(len(r.B)))
	for _, c := range r.B {
		e.uint(uint64(c))
	}
	return e.b
}

func (r *counterRecord) unmarshal(b []byte) error {
	slots := r.B[:0]
	*r = counterRecord{}
	d := decoder{b: b}
	if d.version() {
		if err := json.Unmarshal(b, r); err != nil {
			return err
		}
		return nil
	}
	r.First = d.int()
	for n := d.length(); n > 0; n-- {
		slots = append(slots, d.small(1<<40))
	}
	r.B = slots
	return d.done()
}

// idTag is a short, stable tag of a job id (64-bit FNV-1a): a number
// record tells its jobs apart by tag, which costs 8 bytes whatever the
// id's length. The tag of "" is 0.
func idTag(id string) uint64 {
	if id == "" {
		return 0
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return max(h, 1)
}
