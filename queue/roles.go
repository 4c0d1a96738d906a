package queue

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/simgate/simgate/otp"
)

// simgate has two roles on NATS, each in an account of its own:
//
//   - the daemon (account SIMGATE), which owns the streams, the consumer,
//     the buckets and the otp.request service: everything in its account;
//   - publishers (auth services, account SIMGATE_PUBLISHERS), which queue
//     jobs, call otp.request and follow events (live, and stored ones by
//     direct get), and nothing else.
//
// The publishers reach the daemon's account only through its exports: the
// request subjects as services, the events as a stream. A request through
// a service import is answered on a reply subject the server makes
// (_R_.…), and the answer travels back to the publisher's own reply
// subject in the publishers' account. So a publisher that names a reply
// subject of its choosing (a key of a bucket, an event subject) has the
// answer written there in its own account, where it touches nothing: the
// PubAck of a job, a stored event or the daemon's reply can never be
// turned into a write in the daemon's account. Within their account the
// publishers may publish only on the imported subjects and subscribe only
// to their replies and the live events.
//
// The embedded server is set up in Go (StartEmbedded); an external server
// or cluster with configs/nats/simgate-accounts.conf, which a test holds to
// the same lists.
const (
	// AccountDaemon is the daemon's account.
	AccountDaemon = "SIMGATE"
	// AccountPublishers is the publishers' account.
	AccountPublishers = "SIMGATE_PUBLISHERS"
)

// DaemonInboxPrefix is the prefix of the daemon's reply subjects. It is
// not _INBOX, so that the daemon's replies (consumer fetches carry jobs,
// key reads carry policy state) stay apart from anything a misconfigured
// single-account setup lets publishers read.
const DaemonInboxPrefix = "_INBOX_simgate"

// Export is a subject the daemon's account exports to the publishers'.
type Export struct {
	// Subject is the subject, the same in both accounts.
	Subject string
	// Stream marks a stream export (messages flow to subscribers of the
	// publishers' account); otherwise it is a service (request and reply).
	Stream bool
	// Streamed marks a service that answers one request with several
	// messages (a batched direct get).
	Streamed bool
}

// PublisherExports are the subjects the daemon's account exports to the
// publishers': jobs (with their PubAck), the request service, the
// JetStream API calls that read stored events (account and stream info,
// message and direct gets), and the live events. No consumer: a push
// consumer's deliver subject is any subject of the daemon's account,
// unchecked by the server. ($JS.API.INFO also keeps the server from
// answering the publishers' JetStream calls itself with "JetStream not
// enabled for account", which it does for an account without JetStream
// that does not import it.)
func PublisherExports() []Export {
	ev := otp.StreamEvents
	return []Export{
		{Subject: otp.SubjectSend},
		{Subject: otp.SubjectRequest},
		{Subject: otp.SubjectVerify},
		{Subject: otp.SubjectCheck},
		// Every daemon answers a status request: several answers.
		{Subject: otp.SubjectStatus, Streamed: true},
		{Subject: "$JS.API.INFO"},
		{Subject: "$JS.API.STREAM.INFO." + ev},
		{Subject: "$JS.API.STREAM.MSG.GET." + ev},
		{Subject: "$JS.API.DIRECT.GET." + ev, Streamed: true},
		{Subject: "$JS.API.DIRECT.GET." + ev + ".>"},
		{Subject: otp.SubjectEvents + ".>", Stream: true},
	}
}

// PublisherPublish are the subjects a publisher may publish to: the
// imported services.
func PublisherPublish() []string {
	var subjects []string
	for _, e := range PublisherExports() {
		if !e.Stream {
			subjects = append(subjects, e.Subject)
		}
	}
	return subjects
}

// PublisherSubscribe are the subjects a publisher may subscribe to: its
// replies (PubAcks, otp.request answers, JetStream API answers, stored
// events) and live events.
func PublisherSubscribe() []string {
	return []string{"_INBOX.>", otp.SubjectEvents + ".>"}
}

// PublisherPermissions returns the publisher role's permissions within
// its account.
func PublisherPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: PublisherPublish()},
		Subscribe: &server.SubjectPermission{Allow: PublisherSubscribe()},
	}
}

// roleAccounts returns the daemon's and the publishers' accounts, the
// publishers importing PublisherExports.
func roleAccounts() (daemon, publishers *server.Account, err error) {
	daemon, publishers = server.NewAccount(AccountDaemon), server.NewAccount(AccountPublishers)
	to := []*server.Account{publishers}
	for _, e := range PublisherExports() {
		switch {
		case e.Stream:
			err = daemon.AddStreamExport(e.Subject, to)
		case e.Streamed:
			err = daemon.AddServiceExportWithResponse(e.Subject, server.Streamed, to)
		default:
			err = daemon.AddServiceExportWithResponse(e.Subject, server.Singleton, to)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("export %s: %w", e.Subject, err)
		}
		if e.Stream {
			err = publishers.AddStreamImport(daemon, e.Subject, "")
		} else {
			err = publishers.AddServiceImport(daemon, e.Subject, e.Subject)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("import %s: %w", e.Subject, err)
		}
	}
	return daemon, publishers, nil
}
