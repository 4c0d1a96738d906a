package policy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/simgate/simgate/otp"
)

// Admit decides whether job j, about to be queued through otp.request,
// may be sent, and records it: the caller queues it, then calls Queued,
// or Withdraw when it could not. It returns a *otp.RejectError (rate_limited,
// prefix_blocked, id_conflict) when it may not be sent, and a Verdict with
// Duplicate set when its id was submitted before with the same body.
//
// Rate limits are checked before the job is recorded: a rejected job
// leaves no record, and its id may be used again. A decision reads every
// record it needs in one round trip to the store and writes them in one
// more; a refusal writes nothing (but the record of a number block it
// blocks), and one that a cached block answers reads only the job's own
// record.
func (p *Policy) Admit(ctx context.Context, j otp.Prepared) (Verdict, error) {
	return p.admitJob(ctx, j, 0, false)
}

// ErrNotBlocked is Refuse's answer for a job that no cached block refuses.
var ErrNotBlocked = errors.New("no cached block refuses the job")

// Refuse answers job j, about to be queued through otp.request, when a
// cached block refuses it (see Blocked): as Admit would, from the job's
// own record alone (a duplicate when its id names a job admitted before),
// deciding nothing and writing nothing but, as Admit, the count of an id
// submitted with another body. It counts no parts, so j need not be
// rendered. It returns ErrNotBlocked when no cached block refuses j (any
// more): j then needs Admit.
func (p *Policy) Refuse(ctx context.Context, j otp.Prepared) (Verdict, error) {
	return p.admitJob(ctx, j, 0, true)
}

// AdmitQueued is Admit for job j taken from the queue, carried by the
// message at stream sequence seq. The job is sent when the Verdict is not
// Duplicate: admitted now, or Earlier (by otp.request, or by an earlier
// delivery of this message).
func (p *Policy) AdmitQueued(ctx context.Context, j otp.Prepared, seq uint64) (Verdict, error) {
	return p.admitJob(ctx, j, seq, false)
}

// The records of one decision, in the order of decision.keys.
const (
	recJob = iota
	recNumber
	recBlock
	recCountry
	recGlobal
	nRecords
)

// decision is what one admission reads, decodes and writes. Decisions are
// pooled: the buffers of their records are reused.
type decision struct {
	keys    [nRecords]string
	entries [nRecords]Entry
	writes  [nRecords]Write
	kinds   [nRecords]int // the record (recJob...) of each write
	nw      int
	// added is true when the number is new to its block's record.
	added bool

	job     jobRecord
	number  numberRecord
	block   prefixRecord
	counter counterRecord
	buf     []byte
	mac     *mac
}

func (d *decision) write(kind int, value []byte) {
	value = value[:len(value):len(value)]
	d.writes[d.nw] = Write{Key: d.keys[kind], Value: value, Rev: d.entries[kind].Rev, place: d.entries[kind].place}
	d.kinds[d.nw] = kind
	d.nw++
}

// admitJob is Admit (seq 0), AdmitQueued and, refuseOnly, Refuse.
func (p *Policy) admitJob(ctx context.Context, j otp.Prepared, seq uint64, refuseOnly bool) (Verdict, error) {
	d := p.decisions.Get().(*decision)
	defer p.decisions.Put(d)
	k := p.keysOf(j, d.mac)
	d.keys = [nRecords]string{k.job, k.number, k.block, k.country, globalKey}
	waits := 0
	// Only the records of limits that are on are read: those of the
	// country and global limits come last.
	read := nRecords
	if p.cfg.GlobalPerMinute == 0 {
		read = recGlobal
		if p.countryLimit(j.Number.Region) == 0 {
			read = recCountry
		}
	}
	for attempt := 0; attempt < 50; attempt++ {
		now := p.now()
		n := read
		blocked := p.cachedBlocks(k.block, k.country, now)
		switch {
		case blocked != nil:
			n = 1 // only the job's own record: its id may be a duplicate
		case refuseOnly:
			return Verdict{}, ErrNotBlocked
		}
		clear(d.entries[:])
		if err := p.store.GetMany(ctx, d.keys[:n], d.entries[:n]); err != nil {
			return Verdict{}, fmt.Errorf("read policy records: %w", err)
		}
		if e := d.entries[recJob]; e.Value != nil {
			if err := d.job.unmarshal(e.Value); err != nil {
				return Verdict{}, fmt.Errorf("decode job: %w", err)
			}
			v, decided, err := p.known(ctx, k.job, e.Rev, d.job, k.body, seq, now)
			if errors.Is(err, ErrConflict) {
				continue // the record changed meanwhile: read again
			}
			if errors.Is(err, errInFlight) {
				// Wait for the other submission's outcome: its publish
				// takes milliseconds, and at most its request's time.
				// Waiting is not contention.
				waits++
				attempt--
				if err := sleep(ctx, min(time.Duration(waits)*2*time.Millisecond, 50*time.Millisecond)); err != nil {
					return Verdict{}, ErrInFlight
				}
				continue
			}
			if decided {
				return v, err
			}
		}
		if blocked != nil {
			return Verdict{}, blocked
		}
		v, err := p.decide(d, k, j, seq, now)
		if errors.Is(err, errSameJob) {
			// Its job record follows in a moment: judge against it.
			time.Sleep(time.Duration(attempt+1) * 2 * time.Millisecond)
			continue
		}
		if err != nil {
			if d.nw > 0 {
				// The refusal blocks the number block: record that.
				p.store.Apply(ctx, d.writes[:d.nw])
			}
			return Verdict{}, err
		}
		done, rev, err := p.commit(ctx, d, k, j, now)
		if !done {
			// Another decision changed a record first: decide again,
			// after a pause that keeps busy records from livelock.
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 4))))
			continue
		}
		if err != nil {
			return Verdict{}, err
		}
		v.At, v.rev = now, rev
		return v, nil
	}
	return Verdict{}, fmt.Errorf("record job %s: too much contention", j.ID)
}

// ErrInFlight is Admit's answer to a job that another submission was
// still admitting when ctx ended: its outcome is not known yet, so the
// caller should answer "try again", and must not withdraw it (it is the
// other submission's).
var ErrInFlight = errors.New("the job is being admitted by another submission; try again")

// countryLimit is the sends per hour allowed to region (0: no limit).
func (p *Policy) countryLimit(region string) int {
	if n, ok := p.cfg.Countries[region]; ok {
		return n
	}
	return p.cfg.CountryPerHour
}

// decodeEntry decodes entry e into r; an absent entry is the empty
// record.
func decodeEntry(r record, e Entry, what string) error {
	if err := r.unmarshal(e.Value); err != nil && e.Value != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

// sleep waits for d or for ctx to end.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// decide checks job j against its number's, its number block's, its
// country's and the global limits as read into d, and prepares in d the
// writes that admit it. A refusal prepares no write, but the block record
// when the refusal blocks the number block.
func (p *Policy) decide(d *decision, k jobKeys, j otp.Prepared, seq uint64, now time.Time) (Verdict, error) {
	var v Verdict
	nowMs := now.UnixMilli()
	d.nw, d.added, d.buf = 0, false, d.buf[:0]
	if err := decodeEntry(&d.number, d.entries[recNumber], "number"); err != nil {
		return v, err
	}
	resend, err := p.takeNumber(&d.number, j, nowMs)
	if err != nil {
		return v, err
	}
	v.Resend = resend
	start := len(d.buf)
	d.buf = d.number.marshal(d.buf)
	numberValue := d.buf[start:]

	var blockValue []byte
	if p.cfg.PrefixDistinct > 0 {
		if err := decodeEntry(&d.block, d.entries[recBlock], "number block"); err != nil {
			return v, err
		}
		added, err := p.takePrefix(&d.block, k.block, k.tag, now)
		if be, ok := err.(*blockingError); ok {
			// This number blocks its block: record that, and refuse.
			start := len(d.buf)
			d.buf = d.block.marshal(d.buf)
			d.write(recBlock, d.buf[start:])
			return v, be.re
		}
		if err != nil {
			return v, err
		}
		d.added = added
		start := len(d.buf)
		d.buf = d.block.marshal(d.buf)
		blockValue = d.buf[start:]
	}

	var countryValue, globalValue []byte
	if limit := p.countryLimit(j.Number.Region); limit > 0 {
		start := len(d.buf)
		if err := decodeEntry(&d.counter, d.entries[recCountry], "country"); err != nil {
			return v, err
		}
		if err := p.take(&d.counter, k.country, otp.ScopeCountry, limit, time.Hour, now, sends(j)); err != nil {
			return v, err
		}
		d.buf = d.counter.marshal(d.buf)
		countryValue = d.buf[start:]
	}
	if p.cfg.GlobalPerMinute > 0 {
		start := len(d.buf)
		if err := decodeEntry(&d.counter, d.entries[recGlobal], "global"); err != nil {
			return v, err
		}
		if err := p.take(&d.counter, globalKey, otp.ScopeGlobal, p.cfg.GlobalPerMinute, time.Minute, now, sends(j)); err != nil {
			return v, err
		}
		d.buf = d.counter.marshal(d.buf)
		globalValue = d.buf[start:]
	}

	state := otp.StateAccepted
	if seq == 0 {
		state = stateQueuing
	}
	d.job = jobRecord{State: state, At: nowMs, Body: k.body, Seq: seq, Number: k.number, Resend: v.Resend}
	start = len(d.buf)
	d.buf = d.job.marshal(d.buf)
	// The values share d.buf: growing it moves what follows to a new
	// array, and leaves those before intact in the old one.
	d.write(recJob, d.buf[start:])
	d.write(recNumber, numberValue)
	if blockValue != nil {
		d.write(recBlock, blockValue)
	}
	if countryValue != nil {
		d.write(recCountry, countryValue)
	}
	if globalValue != nil {
		d.write(recGlobal, globalValue)
	}
	return v, nil
}

// commit makes the writes decide prepared. A country or global counter
// that another decision changed meanwhile is counted again on its own;
// any other record that changed makes commit take back what it wrote and
// report done false, to decide again.
func (p *Policy) commit(ctx context.Context, d *decision, k jobKeys, j otp.Prepared, now time.Time) (done bool, jobRev uint64, err error) {
	ws := d.writes[:d.nw]
	p.store.Apply(ctx, ws)
	conflict := false
	for i := range ws {
		w := &ws[i]
		if w.Err == nil {
			continue
		}
		switch kind := d.kinds[i]; {
		case errors.Is(w.Err, ErrConflict) && (kind == recCountry || kind == recGlobal) && err == nil && !conflict:
			// A hot record: count again against what is there now.
			scope, limit, window := otp.ScopeGlobal, p.cfg.GlobalPerMinute, time.Minute
			if kind == recCountry {
				scope, limit, window = otp.ScopeCountry, p.countryLimit(j.Number.Region), time.Hour
			}
			if cerr := p.count(ctx, w.Key, scope, limit, window, now, sends(j)); cerr != nil {
				err = cerr
			} else {
				w.Err = nil
			}
		case errors.Is(w.Err, ErrConflict):
			conflict = true
		case err == nil:
			err = fmt.Errorf("write %s: %w", w.Key, w.Err)
		}
	}
	if err == nil && !conflict {
		return true, ws[0].NewRev, nil // the job's record is the first write
	}
	// Take back what was written, whatever the caller's context: what
	// stays counts against limits.
	ctx = context.WithoutCancel(ctx)
	for i := range ws {
		if ws[i].Err == nil && d.kinds[i] == recJob {
			derr := p.store.Delete(ctx, ws[i].Key, ws[i].NewRev)
			for try := 1; try < 5 && derr != nil && !errors.Is(derr, ErrConflict); try++ {
				time.Sleep(time.Duration(try) * 50 * time.Millisecond) // a store that fails for a moment
				derr = p.store.Delete(ctx, ws[i].Key, ws[i].NewRev)
			}
			if errors.Is(derr, ErrConflict) {
				// Someone took the job's record meanwhile (a worker
				// that took its message adopts it): the job stands
				// as admitted, and its counts with it, also those
				// whose write met another's. Judge again against its
				// record.
				p.countAnyway(ctx, d, ws, k, j, now)
				return false, 0, nil
			} else if derr != nil && err == nil {
				err = fmt.Errorf("take back job: %w", derr)
			}
		}
	}
	for i := range ws {
		if ws[i].Err != nil {
			continue
		}
		switch d.kinds[i] {
		case recNumber:
			p.undoNumber(ctx, ws[i].Key, j.ID, now, sends(j))
		case recBlock:
			if d.added {
				p.undoPrefix(ctx, ws[i].Key, k.tag)
			}
		case recCountry:
			p.uncount(ctx, ws[i].Key, time.Hour, now, sends(j))
		case recGlobal:
			p.uncount(ctx, ws[i].Key, time.Minute, now, sends(j))
		}
	}
	if err != nil {
		return true, 0, err
	}
	return false, 0, nil
}

// countAnyway records the counts of job j whose writes failed, whatever
// the limits: the job was adopted by the worker that took its message, and
// is sent.
func (p *Policy) countAnyway(ctx context.Context, d *decision, ws []Write, k jobKeys, j otp.Prepared, now time.Time) {
	nowMs := now.UnixMilli()
	for i := range ws {
		if ws[i].Err == nil {
			continue
		}
		var add func(cur []byte) ([]byte, error)
		switch d.kinds[i] {
		case recNumber:
			add = func(cur []byte) ([]byte, error) {
				var rec numberRecord
				if cur != nil && rec.unmarshal(cur) != nil {
					return nil, nil
				}
				rec.prune(nowMs)
				rec.add(j, nowMs)
				return rec.marshal(nil), nil
			}
		case recBlock:
			add = func(cur []byte) ([]byte, error) {
				var rec prefixRecord
				if cur != nil && rec.unmarshal(cur) != nil {
					return nil, nil
				}
				rec.Nums = slices.DeleteFunc(rec.Nums, func(n prefixNumber) bool { return n.Tag == k.tag })
				rec.Nums = append(rec.Nums, prefixNumber{Tag: k.tag, At: nowMs})
				return rec.marshal(nil), nil
			}
		case recCountry, recGlobal:
			window := time.Minute
			if d.kinds[i] == recCountry {
				window = time.Hour
			}
			add = func(cur []byte) ([]byte, error) {
				var rec counterRecord
				if cur != nil && rec.unmarshal(cur) != nil {
					return nil, nil
				}
				rec.advance(nowMs / (window.Milliseconds() / counterSlots))
				rec.B[len(rec.B)-1] += sends(j)
				return rec.marshal(nil), nil
			}
		default:
			continue
		}
		_ = p.update(ctx, ws[i].Key, add)
	}
}

// Withdraw takes back the admission of j when it could not be queued: its
// record is deleted, so its id may be used again, and its send no longer
// counts against its number. (Prefix, country and global counts keep it:
// they are coarse.)
func (p *Policy) Withdraw(ctx context.Context, j otp.Prepared) error {
	e, err := p.store.Get(ctx, jobKey(j.ID))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	var rec jobRecord
	if err := rec.unmarshal(e.Value); err != nil {
		return fmt.Errorf("decode job: %w", err)
	}
	if rec.State != stateQueuing || rec.Body != p.bodyHash(j) {
		return nil
	}
	if err := p.store.Delete(ctx, jobKey(j.ID), e.Rev); err != nil {
		if errors.Is(err, ErrConflict) {
			return nil // a worker holds it: it is queued after all
		}
		return fmt.Errorf("delete job: %w", err)
	}
	p.undoNumber(ctx, p.NumberKey(j.Number.E164), j.ID, time.UnixMilli(rec.At), sends(j))
	return nil
}

// Queued records that job j, admitted by Admit with Verdict v, is in the
// queue at stream sequence seq: its record no longer waits for its
// publish, and a later submission of its id is its duplicate however long
// it waits in the queue. One write, at the revision Admit wrote; the
// caller may record it after answering (until then, a worker that takes
// the message records it the same way).
func (p *Policy) Queued(ctx context.Context, j otp.Prepared, v Verdict, seq uint64) error {
	body := p.bodyHash(j)
	if v.rev != 0 {
		rec := jobRecord{State: otp.StateAccepted, At: v.At.UnixMilli(), Body: body, Seq: seq,
			Number: p.NumberKey(j.Number.E164), Resend: v.Resend}
		_, err := p.store.Update(ctx, jobKey(j.ID), rec.marshal(nil), v.rev)
		if !errors.Is(err, ErrConflict) {
			return err
		}
		// Changed since (a worker took it over, say): look.
	}
	return p.update(ctx, jobKey(j.ID), func(cur []byte) ([]byte, error) {
		var rec jobRecord
		if cur == nil || rec.unmarshal(cur) != nil || rec.Body != body || rec.State != stateQueuing {
			return nil, nil // a worker took it over already
		}
		rec.State, rec.Seq = otp.StateAccepted, seq
		return rec.marshal(nil), nil
	})
}

// update runs a compare-and-swap loop on key: f gets the current value (nil
// when absent) and returns the new one (nil leaves the key alone) and an
// error. A new value is written even with an error: a rejection may need to
// record a block. update returns f's error once the write is done.
func (p *Policy) update(ctx context.Context, key string, f func(cur []byte) ([]byte, error)) error {
	for range 100 {
		e, err := p.store.Get(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("read %s: %w", key, err)
		}
		next, ferr := f(e.Value)
		if next == nil {
			return ferr
		}
		if e.Rev == 0 {
			_, err = p.store.Create(ctx, key, next)
		} else {
			_, err = p.store.Update(ctx, key, next, e.Rev)
		}
		if errors.Is(err, ErrExists) || errors.Is(err, ErrConflict) {
			continue // another daemon was faster: read again
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		return ferr
	}
	return fmt.Errorf("write %s: too much contention", key)
}

// sends is how many sends job j counts for: one per SMS part (at least
// one), so that a long message costs what it costs.
func sends(j otp.Prepared) int { return max(j.Parts, 1) }

// takeNumber checks the cooldown (per job) and the windows (per SMS part)
// of j's number (rec), and records j's parts as sends in rec. resend
// reports whether the number has a valid code.
func (p *Policy) takeNumber(rec *numberRecord, j otp.Prepared, nowMs int64) (resend bool, err error) {
	rec.prune(nowMs)
	tag := idTag(j.ID)
	if rec.Last == tag && nowMs-rec.LastAt < staleQueuing.Milliseconds() {
		return false, errSameJob
	}
	for _, c := range rec.Codes {
		if c.Exp > nowMs {
			resend = true
		}
	}
	if n := len(rec.Sends); n > 0 && p.cfg.Cooldown > 0 {
		if wait := rec.Sends[n-1] + p.cfg.Cooldown.Milliseconds() - nowMs; wait > 0 {
			return false, rejectErr(otp.ReasonRateLimited, otp.ScopeNumber, time.Duration(wait)*time.Millisecond, "one send per "+p.cfg.Cooldown.String())
		}
	}
	n := sends(j)
	for _, w := range p.cfg.Number {
		if n > w.Limit {
			return false, tooManyParts(otp.ScopeNumber, n, w.Limit, w.Period)
		}
		since := nowMs - w.Period.Milliseconds()
		i, _ := slices.BinarySearch(rec.Sends, since+1)
		if in := rec.Sends[i:]; len(in)+n > w.Limit {
			// Wait until enough of the oldest sends that count left the
			// window to make room for n.
			oldest := in[len(in)+n-1-w.Limit]
			wait := time.Duration(oldest-since) * time.Millisecond
			return false, rejectErr(otp.ReasonRateLimited, otp.ScopeNumber, wait, fmt.Sprintf("%d sends per %s", w.Limit, w.Period))
		}
	}
	rec.add(j, nowMs)
	return resend, nil
}

// add records job j's parts as sends at nowMs, and its code.
func (r *numberRecord) add(j otp.Prepared, nowMs int64) {
	for range sends(j) {
		r.Sends = append(r.Sends, nowMs)
	}
	r.Last, r.LastAt = idTag(j.ID), nowMs
	if j.Code != "" {
		r.Codes = append(r.Codes, codeEntry{ID: j.ID, At: nowMs, Exp: nowMs + j.TTL.Milliseconds()})
	}
}

// prune drops sends older than a day and codes that expired more than a
// day after they were accepted. Codes tell whether a job is a resend (the
// number has a valid code) and which job is the number's newest
// (supersede); only a valid one matters to either.
func (r *numberRecord) prune(nowMs int64) {
	day := (24 * time.Hour).Milliseconds()
	i, _ := slices.BinarySearch(r.Sends, nowMs-day+1)
	r.Sends = r.Sends[:copy(r.Sends, r.Sends[i:])]
	r.Codes = slices.DeleteFunc(r.Codes, func(c codeEntry) bool {
		return c.Exp <= nowMs && nowMs-c.At > day
	})
	// Keep the record small: 32 codes outlive any burst the number's own
	// limits let through within a code's longest life.
	if len(r.Codes) > 32 {
		r.Codes = r.Codes[:copy(r.Codes, r.Codes[len(r.Codes)-32:])]
	}
}

// undoNumber takes back the n sends admitted at now for job id, and its
// code.
func (p *Policy) undoNumber(ctx context.Context, key, id string, now time.Time, n int) {
	nowMs := now.UnixMilli()
	_ = p.update(ctx, key, func(cur []byte) ([]byte, error) {
		var rec numberRecord
		if cur == nil || rec.unmarshal(cur) != nil {
			return nil, nil
		}
		for range n {
			if i := slices.Index(rec.Sends, nowMs); i >= 0 {
				rec.Sends = slices.Delete(rec.Sends, i, i+1)
			}
		}
		rec.Codes = slices.DeleteFunc(rec.Codes, func(c codeEntry) bool { return c.ID == id })
		if rec.Last == idTag(id) {
			rec.Last, rec.LastAt = 0, 0
		}
		return rec.marshal(nil), nil
	})
}

// blockingError is the refusal of the number that blocks its block.
type blockingError struct{ re *otp.RejectError }

func (e *blockingError) Error() string { return e.re.Error() }

// takePrefix counts the number tag into its block's record rec. added
// reports whether the number is new to the block. The refusal of a number
// that blocks the block is a *blockingError: rec holds the block, to be
// recorded.
func (p *Policy) takePrefix(rec *prefixRecord, key string, tag [6]byte, now time.Time) (added bool, err error) {
	nowMs := now.UnixMilli()
	if rec.Blocked > nowMs {
		return false, p.block(key, rejectErr(otp.ReasonPrefixBlocked, otp.ScopePrefix, time.Duration(rec.Blocked-nowMs)*time.Millisecond, "too many distinct numbers in this number block"), now)
	}
	since := nowMs - p.cfg.PrefixWindow.Milliseconds()
	rec.Nums = slices.DeleteFunc(rec.Nums, func(n prefixNumber) bool { return n.At <= since })
	for i := range rec.Nums {
		if rec.Nums[i].Tag == tag {
			rec.Nums[i].At = nowMs
			return false, nil
		}
	}
	if len(rec.Nums) >= p.cfg.PrefixDistinct {
		rec.Blocked = nowMs + p.cfg.PrefixBlock.Milliseconds()
		return false, &blockingError{p.block(key, rejectErr(otp.ReasonPrefixBlocked, otp.ScopePrefix, p.cfg.PrefixBlock, fmt.Sprintf("more than %d distinct numbers in %s", p.cfg.PrefixDistinct, p.cfg.PrefixWindow)), now)}
	}
	rec.Nums = append(rec.Nums, prefixNumber{Tag: tag, At: nowMs})
	return true, nil
}

func (p *Policy) undoPrefix(ctx context.Context, key string, tag [6]byte) {
	_ = p.update(ctx, key, func(cur []byte) ([]byte, error) {
		var rec prefixRecord
		if cur == nil || rec.unmarshal(cur) != nil {
			return nil, nil
		}
		rec.Nums = slices.DeleteFunc(rec.Nums, func(n prefixNumber) bool { return n.Tag == tag })
		return rec.marshal(nil), nil
	})
}

// take adds n (a job's SMS parts) to the sliding-window counter rec unless
// that would take it past limit. Only a full counter is cached as blocked:
// a job of fewer parts may still fit in one that is not.
func (p *Policy) take(rec *counterRecord, key string, scope otp.Scope, limit int, window time.Duration, now time.Time, n int) error {
	if n > limit {
		return tooManyParts(scope, n, limit, window)
	}
	slot := window.Milliseconds() / counterSlots
	rec.advance(now.UnixMilli() / slot)
	total := rec.sum()
	if total+n > limit {
		// Room comes when enough of the oldest slots leave.
		need, wait := total+n-limit, window
		for i, c := range rec.B {
			if need -= c; need <= 0 {
				wait = time.Duration((rec.First+int64(i)+counterSlots+1)*slot-now.UnixMilli()) * time.Millisecond
				break
			}
		}
		re := rejectErr(otp.ReasonRateLimited, scope, wait, fmt.Sprintf("%d sends per %s", limit, window))
		if total >= limit {
			re = p.block(key, re, now)
		}
		return re
	}
	rec.B[len(rec.B)-1] += n
	return nil
}

// count is take on the counter at key in the store, for a decision whose
// write of it met another's.
func (p *Policy) count(ctx context.Context, key string, scope otp.Scope, limit int, window time.Duration, now time.Time, n int) error {
	return p.update(ctx, key, func(b []byte) ([]byte, error) {
		var rec counterRecord
		if b != nil {
			if err := rec.unmarshal(b); err != nil {
				return nil, fmt.Errorf("decode %s: %w", key, err)
			}
		}
		if err := p.take(&rec, key, scope, limit, window, now, n); err != nil {
			return nil, err
		}
		return rec.marshal(nil), nil
	})
}

// uncount takes n back from a counter that count added them to.
func (p *Policy) uncount(ctx context.Context, key string, window time.Duration, now time.Time, n int) {
	slot := window.Milliseconds() / counterSlots
	at := now.UnixMilli() / slot
	_ = p.update(ctx, key, func(b []byte) ([]byte, error) {
		var rec counterRecord
		if b == nil || rec.unmarshal(b) != nil {
			return nil, nil
		}
		i := at - rec.First
		if i < 0 || i >= int64(len(rec.B)) || rec.B[i] == 0 {
			return nil, nil
		}
		rec.B[i] = max(rec.B[i]-n, 0)
		return rec.marshal(nil), nil
	})
}

// tooManyParts rejects a message of n SMS that a limit (scope) of limit
// sends per period can never admit: no retry_after, as waiting does not
// help.
func tooManyParts(scope otp.Scope, n, limit int, period time.Duration) *otp.RejectError {
	return &otp.RejectError{Reason: otp.ReasonRateLimited, Field: "to", Scope: scope,
		Detail: fmt.Sprintf("a message of %d SMS is more than %d sends per %s", n, limit, period)}
}

// block remembers a rejection of key until its retry time and returns it.
func (p *Policy) block(key string, re *otp.RejectError, now time.Time) *otp.RejectError {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.blocked) > 100_000 {
		for k, b := range p.blocked {
			if !b.until.After(now) {
				delete(p.blocked, k)
			}
		}
	}
	p.blocked[key] = blockEntry{until: now.Add(re.RetryAfter), reason: re.Reason, scope: re.Scope, detail: re.Detail}
	return re
}

// Blocked reports whether a cached rejection (of its number block, its
// country or the global limit) refuses job j now, unless its id names a
// job admitted before: Admit answers such a job from its own record
// alone, without deciding anything.
func (p *Policy) Blocked(j otp.Prepared) bool {
	p.mu.Lock()
	empty := len(p.blocked) == 0
	p.mu.Unlock()
	if empty {
		return false
	}
	return p.cachedBlocks(p.blockKey(j.Number.E164), countryPrefix+j.Number.Region, p.now()) != nil
}

// cachedBlocks returns the cached rejection of j's number block, country
// or the global limit, if any.
func (p *Policy) cachedBlocks(block, country string, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.blocked) == 0 {
		return nil
	}
	for _, key := range [...]string{block, country, globalKey} {
		b, ok := p.blocked[key]
		if !ok {
			continue
		}
		if !b.until.After(now) {
			delete(p.blocked, key)
			continue
		}
		return rejectErr(b.reason, b.scope, b.until.Sub(now), b.detail)
	}
	return nil
}
