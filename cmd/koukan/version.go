package main

import (
	"flag"
	"fmt"
	"runtime/debug"
)

var versionCmd = &command{
	name:    "version",
	summary: "print the version",
	usage:   "",
	help:    `Prints the module version and the VCS revision the binary was built from.`,
	flags: func(fs *flag.FlagSet, out *output) func() int {
		return func() int {
			fmt.Fprintln(out.stdout, versionString())
			return 0
		}
	},
}

// versionString reads what the Go toolchain stamped into the binary.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "koukan (unknown version)"
	}
	v := "koukan " + info.Main.Version
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " (" + rev[:min(12, len(rev))] + dirty + ")"
	}
	return v + " " + info.GoVersion
}
