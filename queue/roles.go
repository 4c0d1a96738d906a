package queue

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/simgate/simgate/otp"
)

// simgate has two roles on NATS:
//
//   - the daemon, which owns the streams, the consumer, the buckets and
//     the otp.request service: everything in its account;
//   - publishers (auth services), which queue jobs, call otp.request and
//     follow events (live, and stored ones by direct get), and nothing
//     else: they cannot read jobs (codes are in them), the buckets, or the
//     daemon's inbox, and cannot write events, create consumers or change
//     any stream.
//
// The embedded server grants them in Go (StartEmbedded); an external
// server or cluster with configs/nats/simgate-accounts.conf, which a test holds to
// the same lists.

// DaemonInboxPrefix is the prefix of the daemon's reply subjects. It is
// not under _INBOX, which publishers subscribe to for their own replies:
// the daemon's replies carry jobs (consumer fetches) and policy state (key
// reads), which no publisher may see.
const DaemonInboxPrefix = "_INBOX_simgate"

// PublisherPublish are the subjects a publisher may publish to: jobs, the
// request service, and the JetStream API calls that read stored events
// (stream info, message and direct gets), nothing else of JetStream. In
// particular no consumer: a push consumer's deliver subject is any subject
// of the account (a consumer on OTP_EVENTS delivering to otp.send would
// feed events back in as jobs), and the server does not check it against
// the creator's permissions.
func PublisherPublish() []string {
	ev := otp.StreamEvents
	return []string{
		otp.SubjectSend,
		otp.SubjectRequest,
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + ev,
		"$JS.API.STREAM.MSG.GET." + ev,
		"$JS.API.DIRECT.GET." + ev,
		"$JS.API.DIRECT.GET." + ev + ".>",
	}
}

// PublisherSubscribe are the subjects a publisher may subscribe to: its
// replies (PubAcks, otp.request answers, JetStream API answers, stored
// events) and live events.
func PublisherSubscribe() []string {
	return []string{"_INBOX.>", otp.SubjectEvents + ".>"}
}

// PublisherPermissions returns the publisher role's permissions.
func PublisherPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: PublisherPublish()},
		Subscribe: &server.SubjectPermission{Allow: PublisherSubscribe()},
	}
}
