package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Position is a place in a config file. Line and Column count from 1; 0 means unknown.
type Position struct {
	File   string
	Line   int
	Column int
}

// String formats p as "file:line:col", leaving out the parts that are unknown.
func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Problem is one finding about a config file: an error or a warning.
type Problem struct {
	Pos Position
	Msg string
}

// String formats the problem as "file:line:col: message".
func (p Problem) String() string { return p.Pos.String() + ": " + p.Msg }

// Errors is every error found in a config, sorted by position. The Load and Parse functions
// return it as their error.
type Errors []Problem

// Error lists the errors one per line.
func (e Errors) Error() string { return joinProblems(e) }

// Warnings are findings that do not stop a config from loading, such as reference keys
// that have no effect.
type Warnings []Problem

// String lists the warnings one per line.
func (w Warnings) String() string { return joinProblems(w) }

func joinProblems(ps []Problem) string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sortProblems orders problems by file position and drops exact repeats, which arise when a
// tag inherits a bad value from its sender.
func sortProblems(ps []Problem) []Problem {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
			cmp.Compare(a.Msg, b.Msg))
	})
	return slices.Compact(ps)
}
