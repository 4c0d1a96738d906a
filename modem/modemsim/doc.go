// Package modemsim simulates a GSM modem on a pseudo-terminal, so that the
// daemon and third-party AT clients can be tested without hardware through
// the real serial path (open Path with go.bug.st/serial, like a ttyUSB).
//
// The simulator follows ITU-T V.250 and 3GPP TS 27.007 / 27.005 and answers
// ERROR to commands it does not know, like a real modem.
//
// # Input
//
// Input is processed byte by byte, so commands may arrive in any
// fragments. A command line starts with "AT" (any case) and ends with S3
// (CR). Outside a command line every byte is ignored: LF, NUL, ESC, noise.
// Inside one, NUL, LF, ESC and Ctrl-Z are ignored and S5 (backspace)
// deletes. "A/" repeats the last command line. Echo (ATE1, the default)
// repeats the command line characters as received, CR included; nothing
// else is echoed, except the message entered after AT+CMGS (Ctrl-Z
// included, ESC not).
//
// Commands may be chained: "ATE0V1", "AT+CMEE=1;+CREG=2". They run in
// order; the first error stops the line and is its final result code,
// otherwise all information responses are followed by one OK. Spaces are
// ignored and letters upper-cased outside double quotes.
//
// # Responses
//
// V1 (default): information text "\r\n<text>\r\n" (the lines of one
// command joined by "\r\n"), final "\r\nOK\r\n" / "\r\nERROR\r\n". V0:
// "<text>\r\n" and numeric codes "0\r", "4\r". Q1 suppresses result codes.
// S3 and S4 give the CR and LF. Unknown commands, bad syntax and parameters
// out of range give ERROR (27.007 §9.1). Errors of the equipment, SIM or
// network give "+CME ERROR: <err>" or "+CMS ERROR: <err>" according to
// AT+CMEE: 0 plain ERROR, 1 numeric, 2 verbose text ("SIM PIN required");
// a code without standard text stays numeric with CMEE=2.
//
// # Commands
//
// V.250: AT, ATZ, AT&F, ATE, ATV, ATQ, ATI, ATX, AT&C, AT&D, AT&W, ATH,
// ATL, ATM, ATT, ATP, ATS<n>?/=<v> (S0, S2-S8, S10, S12); ATA, ATO and ATD
// answer NO CARRIER (no calls). 27.007: +GCAP (+CGSM), +CGMI, +CGMM, +CGMR,
// +CGSN, +GMI, +GMM, +GMR, +GSN, +CIMI, +CMEE, +CPIN, +CPINR, +CFUN (0, 1, 4; 1,1
// resets and locks the SIM again), +CSQ, +CREG, +CGREG, +CEREG (n 0-2, with
// URCs on change), +COPS, +CSCS (GSM, IRA, UCS2). 27.005: +CMGF, +CSMS,
// +CSCA, +CNMI, +CPMS, +CSMP, +CMMS, +CNMA, +CMGS, +CMGR, +CMGL, +CMGD.
// ATZ, AT&F and AT+CFUN=1,1 restore the session settings (echo, V, Q, S
// registers, CMEE, CREG modes, CMGF, CNMI, CSMS, CSCS, CSMP); the SIM, the
// service centre address and the message storage keep theirs.
//
// # SIM and network
//
// With Config.PIN the SIM starts locked. SIM-dependent commands (+CIMI,
// +CSCA, +CPMS, +CMGS, +CMGR, +CMGL, +CMGD) then answer +CME ERROR: 11 /
// +CMS ERROR: 311 (PUK: 12 / 316). The modem reports itself registered
// (Config.Registration) only while the SIM is ready, the radio on
// (+CFUN=1) and +COPS is not 2.
//
// # Sending
//
// AT+CMGS=<length> (PDU mode) answers the prompt "\r\n> " and reads hex
// until Ctrl-Z (send) or ESC (cancel: OK). The PDU must be hex with a valid
// SMSC part, a TPDU of <length> octets and a valid SMS-SUBMIT, else
// +CMS ERROR: 304. Then, in order: not registered gives +CMS ERROR: 331, a
// code queued by FailNextSends is answered at once, otherwise the modem
// waits SendDelay, assigns the next message reference and answers
// "\r\n+CMGS: <mr>\r\n\r\nOK\r\n". Text mode (AT+CMGF=1) is supported too:
// AT+CMGS="<da>"[,<toda>], text lines ended by CR (each gets a new prompt;
// the CR stays in the text) and Ctrl-Z; one segment at most (+CMS ERROR:
// 305 otherwise), encoded GSM 7-bit or UCS-2 as needed, TP-SRR from the
// first octet of +CSMP. Unsolicited result codes are held during the
// message entry and written when it ends, before the final result code.
//
// Every accepted PDU is recorded (Submissions) and reported to
// Config.OnSubmit; concatenated parts with the same destination and
// reference are reassembled and reported to Config.OnMessage (Messages).
//
// # Random faults
//
// Config.FailRate fails sends with +CMS ERROR codes, Config.HangRate makes
// a send hang the modem for Config.HangFor (the SMS goes out, the answer
// is lost), Config.URCRate adds stray +CMTI unsolicited result codes
// mid-command, and Config.ReportFailRate and ReportDropRate spoil status
// reports. They draw from one generator seeded with Config.Seed, in the
// order of the commands: the same seed and input give the same faults.
//
// # Status reports
//
// For every accepted SMS-SUBMIT with TP-SRR set (each part of a
// concatenated message: each has its own TP-MR) the simulated network
// returns an SMS-STATUS-REPORT: after Config.ReportDelay with TP-ST
// Config.ReportStatus (0x00, delivered, by default), or as Config.Report
// (SetReport) decides: another status, another delay, or none. Reports come
// out in the order they are due, not in the order of the submissions. The
// report carries TP-MR, TP-RA (the submission's TP-DA), TP-SCTS (when the
// submission was accepted), TP-DT (when the report is made) and TP-ST; its
// PDU starts with the service centre address of AT+CSCA. AT+CNMI <ds>
// decides what the modem does with it (27.005 §3.4.1):
//
//   - 0: nothing, the report is dropped (AT+CNMI defaults to 0).
//   - 1: the unsolicited result code "+CDS: <length>" and the PDU on the
//     next line (<length>: TPDU octets, without the service centre
//     address), or in text mode
//     "+CDS: <fo>,<mr>,<ra>,<tora>,<scts>,<dt>,<st>"; written like
//     Inject's (held during message entry, before a final result code).
//     With AT+CSMS=1 each +CDS wants an AT+CNMA: no other +CDS comes
//     until then, and when Config.AckTimeout passes without one the modem
//     sets <mt> and <ds> to 0 (routing disabled, counted by MissedAcks).
//     Reports due meanwhile wait, then go as the settings then say. ATZ,
//     AT+CSMS=0 or a <ds> other than 1 end the wait too. With
//     Config.StoreReports <ds>=1 is refused (+CMS ERROR: 303).
//   - 2: the report is stored in the "SR" memory and indicated with
//     `+CDSI: "SR",<index>`. Indexes start at 1; the memory holds 30
//     reports, and a report finding it full is lost.
//
// AT+CPMS accepts "SR" as <mem1>, the memory AT+CMGR=<index> reads (an
// unread report becomes read), AT+CMGL[=<stat>] lists and
// AT+CMGD=<index>[,<delflag>] deletes from; "SM", "ME" and "MT" are
// always empty. AT+CMGR of an empty or invalid index gives +CMS ERROR:
// 321; AT+CMGD of an empty index is not an error.
//
// A report that comes while the modem is hung, or with <ds>=1 while no
// client has the port open, is lost (and wants no AT+CNMA); with <ds>=2 it
// is stored all the same and only the +CDSI is lost. Registration is not
// considered. Reports not yet due when the modem closes are dropped.
// Reports lists what the network sent and how it was routed.
//
// # Pseudo-terminal
//
// The simulator holds only the master side. Output written while no client
// has the port open is dropped (a reopened port does not receive stale
// answers); a client may close and reopen the port at will. Close hangs up
// the line.
package modemsim
