package queue

import (
	"testing"
	"time"
)

func TestAckMetadata(t *testing.T) {
	for _, tc := range []struct {
		subject                     string
		ok                          bool
		stream, consumer, domain    string
		delivered, sseq, cseq, pend uint64
		ns                          int64
	}{
		{subject: "$JS.ACK.OTP_JOBS.simgate.2.17.9.1700000000000000000.4", ok: true,
			stream: "OTP_JOBS", consumer: "simgate", delivered: 2, sseq: 17, cseq: 9, ns: 1700000000000000000, pend: 4},
		{subject: "$JS.ACK._.ACCHASH.OTP_JOBS.simgate.1.5.5.1700000000000000001.0.tok", ok: true,
			stream: "OTP_JOBS", consumer: "simgate", delivered: 1, sseq: 5, cseq: 5, ns: 1700000000000000001},
		{subject: "$JS.ACK.hub.ACCHASH.S.C.3.1.2.10.7", ok: true,
			stream: "S", consumer: "C", domain: "hub", delivered: 3, sseq: 1, cseq: 2, ns: 10, pend: 7},
		{subject: "_INBOX.abc"},
		{subject: "$JS.ACK.S.C.1.2.3"},
		{subject: "$JS.ACK.S.C.x.2.3.4.5"},
		{subject: "$JS.ACK.S.C.1.2.3.4.-5"},
		{subject: "$JS.ACK.a.b.S.C.1.2.3.4.5.t.extra"},
		{subject: "$JS.NAK.S.C.1.2.3.4.5"},
	} {
		md, err := AckMetadata(tc.subject)
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok %v", tc.subject, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if md.Stream != tc.stream || md.Consumer != tc.consumer || md.Domain != tc.domain ||
			md.NumDelivered != tc.delivered || md.Sequence.Stream != tc.sseq || md.Sequence.Consumer != tc.cseq ||
			md.NumPending != tc.pend || !md.Timestamp.Equal(time.Unix(0, tc.ns)) {
			t.Errorf("%q: %+v", tc.subject, md)
		}
	}
}

func FuzzAckMetadata(f *testing.F) {
	f.Add("$JS.ACK.OTP_JOBS.simgate.2.17.9.1700000000000000000.4")
	f.Add("$JS.ACK._.ACCHASH.OTP_JOBS.simgate.1.5.5.1700000000000000001.0.tok")
	f.Fuzz(func(t *testing.T, s string) {
		md, err := AckMetadata(s)
		if (err == nil) != (md != nil) {
			t.Fatalf("%q: metadata %v and error %v", s, md, err)
		}
	})
}
