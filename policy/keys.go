package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/simgate/simgate/otp"
)

// Store keys. A number and a number block (prefix) are named by a keyed
// hash: the store never sees a number.
const (
	jobPrefix     = "job."
	numberPrefix  = "num."
	blockPrefix   = "pfx."
	countryPrefix = "cty."
	globalKey     = "global"
)

// hashHex is how many bytes of a keyed hash name a key or a body (as
// hex).
const hashHex = 16

// mac is a keyed HMAC-SHA256 with the buffers to feed it without
// allocating: a decision hashes a number, its block and the job's body.
type mac struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// macs hands out macs keyed with one key: from pool, or new ones to keep.
type macs struct {
	key  []byte
	pool sync.Pool
}

func newMACs(key []byte) *macs {
	m := &macs{key: append([]byte(nil), key...)}
	m.pool.New = func() any { return m.new() }
	return m
}

// new returns a new mac.
func (m *macs) new() *mac {
	return &mac{h: hmac.New(sha256.New, m.key), in: make([]byte, 0, 256)}
}

// hash hashes m.in (which the caller built) into m.sum.
func (m *mac) hash() []byte {
	m.h.Reset()
	m.h.Write(m.in)
	return m.h.Sum(m.sum[:0])
}

// jobKeys are the store keys and hashes one decision needs, in one
// string.
type jobKeys struct {
	job, number, block, country string
	// body is the keyed hash of the job's body (jobRecord.Body).
	body string
	// tag names the number in its block's record (prefixNumber.Tag).
	tag [6]byte
}

// keysOf returns the keys and hashes for job j, hashing with m.
func (p *Policy) keysOf(j otp.Prepared, m *mac) jobKeys {
	var k jobKeys
	var buf [256]byte
	b := append(append(buf[:0], jobPrefix...), j.ID...)
	nJob := len(b)

	m.in = append(m.in[:0], j.Number.E164...)
	sum := m.hash()
	copy(k.tag[:], sum)
	b = append(b, numberPrefix...)
	b = hex.AppendEncode(b, sum[:hashHex])
	nNumber := len(b)

	m.in = append(append(m.in[:0], "prefix:"...), p.prefix(j.Number.E164)...)
	b = append(b, blockPrefix...)
	b = hex.AppendEncode(b, m.hash()[:hashHex])
	nBlock := len(b)

	b = append(append(b, countryPrefix...), j.Number.Region...)
	nCountry := len(b)

	m.in = appendBody(append(m.in[:0], "body:"...), j)
	b = hex.AppendEncode(b, m.hash()[:hashHex])

	s := string(b)
	k.job, k.number, k.block = s[:nJob], s[nJob:nNumber], s[nNumber:nBlock]
	k.country, k.body = s[nBlock:nCountry], s[nCountry:]
	return k
}

// NumberKey returns the store key of number e164: a keyed hash, the
// name by which every record of the number knows it.
func (p *Policy) NumberKey(e164 string) string {
	m := p.macs.pool.Get().(*mac)
	defer p.macs.pool.Put(m)
	m.in = append(m.in[:0], e164...)
	return numberPrefix + hex.EncodeToString(m.hash()[:hashHex])
}

// blockKey returns the store key of the number block (prefix) of e164.
func (p *Policy) blockKey(e164 string) string {
	m := p.macs.pool.Get().(*mac)
	defer p.macs.pool.Put(m)
	m.in = append(append(m.in[:0], "prefix:"...), p.prefix(e164)...)
	return blockPrefix + hex.EncodeToString(m.hash()[:hashHex])
}

// bodyHash returns a keyed hash of what makes j the job it is: its number,
// code or text, ttl as given, template, locale, origin and app hash.
func (p *Policy) bodyHash(j otp.Prepared) string {
	m := p.macs.pool.Get().(*mac)
	defer p.macs.pool.Put(m)
	m.in = appendBody(append(m.in[:0], "body:"...), j)
	return hex.EncodeToString(m.hash()[:hashHex])
}

func jobKey(id string) string { return jobPrefix + id }

// appendBody appends what bodyHash hashes for j: the JSON array
// [number, code, text, ttl in ns, template, locale, origin, app hash], as
// json.Marshal writes it (so that hashes stay those of earlier versions).
func appendBody(b []byte, j otp.Prepared) []byte {
	code := j.Code
	if j.Sealed != "" {
		// A managed code: the job is the same whatever code it carries
		// (a retried otp.verify may bring a new one).
		code = ""
	}
	b = append(b, '[')
	for i, s := range []string{j.Number.E164, code, j.Text} {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	b = strconv.AppendInt(append(b, ','), int64(j.Job.TTL), 10)
	for _, s := range []string{j.Template, j.Locale, j.Origin, j.AppHash} {
		b = appendJSONString(append(b, ','), s)
	}
	return append(b, ']')
}

// appendJSONString appends s as json.Marshal quotes it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			q, _ := json.Marshal(s) // escapes: rare in a job
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// jsonPlain tells the bytes that json.Marshal writes as they are in a
// string: printable ASCII but for the quote, the backslash and the HTML
// characters it escapes.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()
