// Package outbound is the outbound half of the SMTP gateway: an HTTP server that speaks the
// transaction REST API (reference §2, §9.2) to the router's rest_output step, and sends each
// transaction on to the remote host the router chose, over SMTP or LMTP.
//
// Why it exists: the router knows where a message should go and keeps it durably; it never
// speaks SMTP itself. This package is the stateless, node-local bridge between the two worlds,
// so it keeps transactions in memory only, for as long as an SMTP session needs them, and
// reports the remote server's own replies back in the transaction JSON (mail_response,
// rcpt_response, data_response) while the router waits.
//
// The life of one transaction:
//
//	POST  /senders/{any}/transactions   sender.tag picks the Host settings; mail_from, remote_host
//	GET   /transactions/{id}            hanging GET on the version (ETag); a change wakes it at once
//	PATCH /transactions/{id}            recipients, appended with rcpt_to_list_offset; or a heartbeat
//	PUT   /transactions/{id}/body       the raw message, whole or in Content-Range pieces
//	POST  /transactions/{id}/cancel     RSET (or drop the connection mid-DATA), nothing is delivered
//
// One goroutine per transaction (the worker) drives the SMTP client: it connects to
// remote_host (which must be an IP literal: the router resolves, the gateway never does DNS),
// reads the greeting, says EHLO (LHLO) with the host's name, upgrades with STARTTLS when the
// peer offers it (or insists on it, with or without certificate verification, per Host),
// sends MAIL, each recipient as it arrives, and then the body. The first PUT of the body is
// the signal that no more recipients will come, as in the reference's private dialect.
//
// Invariants:
//
//   - The body is streamed, never held: a PUT hands its request body to the worker, which
//     writes it straight into the SMTP DATA stream (or into BDAT chunks of Host.ChunkSize
//     bytes), so TCP back-pressure from the peer reaches the router. Memory per transaction is
//     one chunk and one copy buffer, whatever the message size.
//   - Every failure on the SMTP side (a refusal, a timeout, a lost connection, a TLS policy
//     that cannot be met, a parameter the peer lacks) becomes a tx.Response with a reply
//     code, an enhanced status code and text that is either the peer's own reply or ours;
//     Go error strings only reach the log. The translation is in one function, outcome.
//     A connect failure is 451 4.4.1, so rest_output moves on to the next resolved host.
//   - A transaction's read form only grows, version by version, as tx.Delta requires.
//   - Deadlines inside are shorter than the router's outside: the MAIL phase as a whole, and
//     every recipient, get Host.Timeout (25 s unless set, under rest_output's default
//     rcpt_timeout of 30 s); the reply to the end of the message gets Host.DataTimeout (4 min,
//     under its default data_timeout of 5 min). So the router reads our 4xx, not its own
//     timeout.
//
// Decisions, where the reference left them open:
//
//   - ESMTP parameters are checked against the peer's EHLO (params.go). SIZE is passed on when
//     the peer has SIZE (552 5.3.4 if over its limit) and dropped otherwise; BODY=8BITMIME and
//     BINARYMIME need the extension (550 5.6.3: the gateway does not convert); SMTPUTF8 needs
//     SMTPUTF8 (553 5.6.7); REQUIRETLS needs the peer's REQUIRETLS over a verified TLS session
//     (550 5.7.30). The DSN parameters RET, ENVID, NOTIFY and ORCPT are passed on only to a
//     peer with DSN and otherwise dropped, as RFC 3461 §4.1 has a relay do towards a non-DSN
//     server; the "relayed" DSN it then suggests for NOTIFY=SUCCESS is not generated. AUTH=
//     is always dropped (the gateway does not authenticate to peers). Any other parameter is
//     passed on only if the peer advertises the keyword, else 555 5.5.4.
//   - LMTP carries one accepted recipient per transaction. LMTP gives one data reply per
//     recipient but the transaction has one data_response; merging several replies would lose
//     one outcome or duplicate a delivery on retry. So once a recipient is accepted, later
//     ones get 452 4.5.3 without reaching the peer (RFC 5321 §4.5.3.1.10: the client sends
//     them in another transaction), and the one per-recipient data reply is the data_response.
//   - Connections are reused (pool.go) per destination address, EHLO name, protocol and TLS
//     policy: after a transaction the session gets RSET and waits up to Host.ReuseIdle for
//     the next one, up to Host.MaxReuse messages. A reused session that turns out dead at
//     MAIL is replaced by a fresh connection once.
//   - Cancel before the body sends RSET (the session may then be reused); cancel in the
//     middle of DATA drops the connection, since DATA cannot be ended without delivering;
//     in the middle of BDAT the unsent chunk is dropped and RSET ends the transaction.
//
// Why not go-smtp's client: the module's Client (v0.25.1) cannot say EHLO with a chosen name
// and then STARTTLS (its StartTLS path always greets as "localhost"), has no BDAT, always
// adds BODY=8BITMIME when the peer has 8BITMIME and cannot pass BODY=7BIT or BINARYMIME, and
// keys LMTP data replies by address so duplicate recipients collide. The client here (smtp.go)
// is the small subset the gateway needs, on net/textproto's dot-stuffing writer; go-smtp's
// server is what the tests use as the peer.
package outbound
