// Package tx is the transaction data model that the router, the gateway, the
// store and the chain steps share: the envelope (mail_from, rcpt_to), the
// body, the upstream responses, and the bookkeeping around them.
//
// A transaction is a record of requests and the responses to them that only
// ever grows. Every part of Koukan moves deltas between snapshots of it, and
// several writers (REST clients, chain steps, the exploder, the output
// handler) race on the same record, so the growth rules are enforced here,
// in one place, rather than trusted to each caller:
//
//   - scalar fields are write-once: setting an equal value again is a no-op,
//     changing or clearing a set value is a conflict;
//   - lists (rcpt_to, rcpt_response) are append-only, and a delta says at
//     which index its items start, so a stale writer is caught instead of
//     silently misnumbering recipients;
//   - dict fields gain keys and replace values but never lose keys;
//   - the body may only grow (more bytes, finalized), never be swapped.
//
// The same transaction is serialized differently in each place it travels
// (a REST response, a POST body, a database row, a copy into an exploded
// recipient transaction). A Context names each of these, and a single table
// (fields.go) says which fields each context carries, so input validation and
// output filtering cannot drift apart. REST responses show placeholders ({})
// for the request fields a client already knows rather than echoing them.
//
// Parse errors are *FieldError or *SyntaxError values whose text names the
// offending field and is safe to show an API client; delta and merge failures
// are *ConflictError. The package imports only the standard library.
package tx
