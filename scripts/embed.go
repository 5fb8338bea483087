// Package scripts holds the Lua scripts shipped with Koukan — the filters, routing policies
// and matchers of docs/lua.md — embedded in the binary, so that a config written for the
// reference system works without a script directory of its own. An operator's directory
// (scripts.paths) comes first, so a file of the same name there replaces a shipped one.
package scripts

import (
	"embed"
	"io/fs"
)

//go:embed filters policies matchers
var files embed.FS

// FS is the shipped library: filters/, policies/ and matchers/.
var FS fs.FS = files
