// Package dsn builds delivery status notifications: bounces, delay warnings
// and success reports (RFC 3464 inside an RFC 6522 multipart/report), and
// holds the RFC 3461 rules that decide whether the sender asked for one.
//
// A DSN is the only mail an MTA writes on its own, to someone who did not
// ask for it in that form, so the package keeps these invariants:
//
//   - No DSN goes to the null reverse-path. A bounce of a bounce can loop
//     between two MTAs forever; ShouldNotify says no and Build refuses.
//   - The original message is streamed. With RET=FULL it may be large, so it
//     is copied from an io.Reader; only its first 64 KiB, where the header
//     section is looked for, is ever buffered.
//   - The output has CRLF line ends throughout, the returned message
//     included (bare LFs are converted): a DSN is sent over SMTP.
//   - Text that came from elsewhere (remote replies, addresses, ENVID) never
//     starts a new header line: control characters become spaces before it
//     is written, and long values are folded.
//   - The report is 7-bit message/delivery-status unless a field holds UTF-8
//     (SMTPUTF8 addresses, RFC 6533); then it is 8-bit
//     message/global-delivery-status with the "utf-8" address type, and
//     returned headers holding UTF-8 are message/global-headers or
//     message/global. Such a DSN must itself be sent with SMTPUTF8.
//
// ESMTP parameter values (NOTIFY, RET, ENVID, ORCPT) are taken as plain
// strings, so the package does not depend on the transaction model.
package dsn
