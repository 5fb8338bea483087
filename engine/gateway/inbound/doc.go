// Package inbound is the SMTP half of the gateway that faces clients: an
// SMTP server (github.com/emersion/go-smtp) that turns each SMTP
// transaction into a transaction on the router, through the REST API
// (engine/rest), as it happens. It keeps no message and no queue: the
// router's answer to each command is the reply, so a client is told 250
// only once the router has the message (reference §9.1).
//
// The mapping, per transaction:
//
//	MAIL       POST {Endpoint} with sender, mail_from (and its parameters),
//	           remote_host, local_host and smtp_meta; wait for mail_response
//	RCPT       PATCH rcpt_to at the next offset; wait for that rcpt_response
//	DATA/BDAT  PUT the body to its blob URI in ChunkSize pieces as it
//	           arrives; wait for data_response
//	RSET, QUIT, a new greeting, a dropped connection, a failure
//	           POST .../cancel, unless the router answered everything
//
// Why it is built the way it is:
//
//   - The message is streamed, never held whole: memory per connection is
//     one chunk, and SIZE is enforced while the bytes flow (552 after the
//     limit, with what was sent upstream cancelled), not after buffering.
//   - Every wait is bounded by the SMTP side's timeout for that command
//     (MailTimeout, RcptTimeout, DataTimeout; reference §9.3), and every
//     REST call runs inside it, so the client hears 451 4.4.5 before it
//     gives up on us, not a dropped connection.
//   - Outcomes are replies (type reply: code, enhanced code, safe text,
//     cause) from the moment they are decided, and the session's answer
//     method is the one place anything becomes what the client hears:
//     deadlines are 451 4.4.5, every other failure 451 4.3.0 with the
//     transaction id. go-smtp would send the text of any other error, so
//     only a bare *smtp.SMTPError ever reaches it. The router's responses
//     are checked to be SMTP replies (2xx/4xx/5xx, one printable line, an
//     enhanced code of the right class) before they are passed on.
//   - A transaction whose upstream failed (a timeout, the router gone) is
//     given up: cancelled upstream and refused until RSET. Carrying on
//     could deliver to a recipient the client was told failed, and so
//     deliver twice when it retries.
//   - A rest.Tx is one goroutine's at a time; go-smtp runs BDAT's Data on
//     a goroutine of its own while RSET or a close may arrive on another.
//     So the transaction's lock is held for each REST call, and abandoning
//     a transaction cancels the call in flight and sends the upstream
//     cancel from a goroutine that waits for the lock.
//   - Connection limits (in total, per client IP), read deadlines (per
//     read: a slow client is not cut off mid-message, a silent one is),
//     implicit TLS and the PROXY protocol (engine/gateway/proxyproto) are
//     layered on the listener, under go-smtp, which knows nothing of them.
//
// What go-smtp (v0.25.1) decides and this package lives with: CHUNKING is
// always offered (so there is no switch for BDAT); success replies to MAIL
// and RCPT carry go-smtp's text rather than the router's (DATA's carry the
// router's); AUTH before TLS is refused with 523 5.7.10; a DATA message of
// exactly MaxMessageBytes bytes is refused as too large; command and text
// lines share one limit (MaxLineLength); the 421 that ends an idle
// connection at Shutdown says "Idle timeout". A BDAT transfer that ends
// without the router's answer (RSET in the middle, a chunk over SIZE, an
// upstream failure) ends the connection, because go-smtp could answer a
// later BDAT transfer with the aborted one's result (see session.Data).
//
// Bare LF: command lines may end in LF alone (accepted, as most servers
// do), but only CRLF.CRLF ends DATA, so "LF.LF" and "LF.CRLF" are message
// text, not an end of data that a downstream MTA might read differently
// (SMTP smuggling).
package inbound
