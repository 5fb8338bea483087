// Package loadgen is Koukan's load generator, the engine of "koukan bench": it sends
// generated messages to an SMTP server or to a transaction REST API from a number of
// concurrent workers, measures how long each one takes to get its final answer, and
// summarizes a run as counts, throughput, latency percentiles and failures grouped by
// reply code. It also holds the far end of such a benchmark, an SMTP/LMTP sink that
// discards what it accepts and fails a configurable fraction of it.
//
// Invariants:
//
//   - Every message of a run has the same size and a Message-ID of its own; the bytes
//     of a size are generated once per run and shared by all workers.
//   - Latency percentiles are computed from every successful message's latency, sorted;
//     nothing is sampled or bucketed.
//   - A failure of any kind (a reply, a dropped connection, a timeout, an HTTP error)
//     is counted and grouped, never returned as an error of the run: a run always
//     ends with a Result.
//   - Stopping a run (its context ends) abandons the messages in flight; they are not
//     counted, so the counts hold only messages that got an answer.
package loadgen
