// Package config reads router.yaml, gateway.yaml and the all-in-one serve file.
//
// Config is validated at the edge: this package parses the YAML, applies every documented
// default (shared/spec/reference.md §10), checks types, ranges and the references between
// sections (senders, tags, endpoints, rest endpoints), and hands the rest of Koukan typed
// structs only. The engine never sees YAML and never has to re-check a value.
//
// Every problem is reported with its place in the file, as "file:line:col: message", and a
// load reports all of them at once (sorted by position) instead of stopping at the first.
// Keys the reference system accepted that have no effect in Koukan (it ignored them, or
// Koukan does their job another way) still load, with a Warning, so configs written for it
// keep working.
//
// Chain steps implemented in Go (exploder, rest_output, router, add_route, message_builder,
// message_parser) get typed options here. Every other step is a Lua script whose options this
// package keeps as positioned Values; the Lua runtime checks them through a StepChecker.
package config
