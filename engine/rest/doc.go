// Package rest is the client side of Koukan's transaction REST API: the
// router's rest_output step uses it to hand a transaction to the SMTP gateway
// or to a receiving application, and the SMTP gateway uses it to hand what it
// accepted to the router.
//
// A Client holds one pooled HTTP client (keep-alive; HTTP/2 when a TLS server
// offers it) that every transaction shares. Create starts an upstream
// transaction and returns a Tx, which tracks the upstream's view of it (its
// Location, its ETag and its latest read form) through Update, Wait, PutBlob,
// PostMessageBuilder and Cancel.
//
// Invariants a caller can rely on:
//
//   - Every error is a *Error. Its Kind says whether the upstream answered
//     (and with what status) or not, and its Safe text is a fixed vocabulary
//     that may be shown to an SMTP client; the cause stays in Error() for the
//     log.
//   - The state a Tx holds only ever grows: each new read form is checked
//     against the previous one with tx.Delta, and an upstream that removes or
//     changes a field is a protocol error, not a new truth.
//   - A Tx never holds a state without the ETag it came with.
//   - Requests are replayable across 308 redirects (a replica that does not
//     hold the transaction sends the client to the one that does): JSON
//     bodies are in memory, and a chunked upload buffers exactly one chunk,
//     which is also what lets it resend bytes after a 416.
//   - Waiting never spins: an upstream that answers a hanging GET at once
//     without a change is polled with a growing delay.
//
// A Tx is used by one goroutine at a time, like the chain step that owns it;
// a Client is safe for concurrent use.
package rest
