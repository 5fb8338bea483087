// Package resttest is a REST receiver for tests: the far end of the router's
// rest_output step (and of anything else that speaks the transaction API as
// a client), over real HTTP on 127.0.0.1. It implements the receiver contract
// of spec section 2.11 and nothing more, so that a client that works against
// it works against a receiving application:
//
//	POST  /senders/{sender}/transactions      201, absolute Location, ETag, read form
//	GET   /transactions/{id}                  200; with If-None-Match a hanging GET, 304 on timeout
//	PATCH /transactions/{id}                  If-Match required; update form or heartbeat
//	PUT   /transactions/{id}/body             whole, or in pieces with Content-Range
//	PUT   /transactions/{id}/blob/{blob}      a part named in the parsed message
//	POST  /transactions/{id}/message_builder  the parsed-message JSON (Options.Parsing)
//	POST  /transactions/{id}/cancel
//
// What the upstream answers is scripted (Options.Respond); by default every
// request gets 250 at once. Everything a transaction received is recorded
// (Transactions, WaitFor).
//
// Invariants:
//
//   - Responses come in SMTP order, one request at a time: mail_response,
//     then each rcpt_response in turn, then data_response once the body and
//     every part blob are finalized and some recipient was accepted. Nothing
//     is answered after a failed MAIL or a cancel. A scripted delay starts
//     when the receiver gets to the request.
//   - A transaction's version (its ETag) starts at 1 and moves on whenever
//     its read form changes (a response, a finalized blob, a PATCH, a
//     cancel), so every read form extends the previous one.
//   - All methods are safe for concurrent use. Close ends hanging GETs, and
//     no scripted reply is given after it returns.
package resttest
