package lint

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/yuin/gopher-lua/parse"
)

// The AST keeps only line numbers, so columns come from a token list made
// with gopher-lua's own scanner: it agrees with the parser on lines and
// skips strings and comments, which a plain text search would not.

type tokenKind int

const (
	word  tokenKind = iota // identifier or keyword
	str                    // string literal; text is its decoded value
	other                  // number or punctuation
)

type token struct {
	line, col int
	text      string
	kind      tokenKind
	end       Pos // position of the token's last byte, if the scanner knew it
}

// lexFailure is the token the scanner rejected and why.
type lexFailure struct {
	tok token
	err *parse.Error
}

// scan tokenizes src up to its end or to the first lexical error.
func scan(src []byte) ([]token, *lexFailure) {
	sc := parse.NewScanner(bytes.NewReader(src), "")
	lx := &parse.Lexer{}
	var toks []token
	for {
		t, err := sc.Scan(lx)
		tok := token{line: t.Pos.Line, col: t.Pos.Column, text: t.Str, end: Pos{sc.Pos.Line, sc.Pos.Column}}
		switch {
		case t.Type == parse.TString:
			tok.kind = str
		case t.Type == parse.TNumber:
			tok.kind = other
		case t.Str == "":
			// The scanner leaves Str empty for '.'.
			tok.kind, tok.text = other, string(rune(t.Type))
		case t.Str[0] == '_' || 'a' <= t.Str[0] && t.Str[0] <= 'z' || 'A' <= t.Str[0] && t.Str[0] <= 'Z':
			tok.kind = word
		default:
			tok.kind = other
		}
		if err != nil {
			var pe *parse.Error
			errors.As(err, &pe)
			return toks, &lexFailure{tok, pe}
		}
		if t.Type == parse.EOF {
			return toks, nil
		}
		toks = append(toks, tok)
	}
}

// lexMessage rewords a scanner complaint in Lua's usual terms.
func lexMessage(pe *parse.Error, tok token) string {
	switch pe.Message {
	case "unterminated multiline string":
		return "unterminated long string"
	case "invalid multiline string":
		return "invalid long string delimiter"
	case "invalid multiline comment":
		return "unterminated or invalid long comment"
	case "Invalid token", "Invalid '~' token":
		return "unexpected character " + strconv.QuoteToASCII(pe.Token)
	case "illegal hexadecimal number":
		return "malformed number near " + tok.show()
	}
	return pe.Message // "unterminated string" reads well as it is
}

// syntaxFinding turns a parse error into a positioned finding; the raw
// error text has Go-specific layout and a trailing newline.
func syntaxFinding(file string, err error, toks []token, bad *lexFailure) Finding {
	f := Finding{File: file, Line: 1, Col: 1, Severity: Error, Message: "syntax error"}
	var pe *parse.Error
	if !errors.As(err, &pe) {
		return f
	}
	if bad != nil && bad.err != nil && bad.err.Pos.Line == pe.Pos.Line && bad.err.Pos.Column == pe.Pos.Column && bad.err.Message == pe.Message {
		// The scanner failed: point at the start of the token it rejected.
		f.Line, f.Col = bad.tok.line, bad.tok.col
		f.Message = "syntax error: " + lexMessage(pe, bad.tok)
		return f
	}
	if pe.Pos.Line == parse.EOF {
		f.Message = "syntax error: unexpected end of file"
		if n := len(toks); n > 0 {
			last := toks[n-1]
			f.Line, f.Col = last.line, last.col
			if last.end.Line > 0 {
				f.Line, f.Col = last.end.Line, last.end.Col+1
			}
		}
		return f
	}
	// The parser stops at the token it has just read: the last one that
	// starts at or before the reported position.
	i := len(toks) - 1
	for i >= 0 && (toks[i].line > pe.Pos.Line || toks[i].line == pe.Pos.Line && toks[i].col > pe.Pos.Column) {
		i--
	}
	if i < 0 {
		return f
	}
	f.Line, f.Col = toks[i].line, toks[i].col
	f.Message = "syntax error near " + toks[i].show()
	return f
}

// show renders a token for a message, shortened so a long string literal
// does not swamp it.
func (t token) show() string {
	const limit = 20
	s := t.text
	if utf8.RuneCountInString(s) > limit {
		s = string([]rune(s)[:limit]) + "..."
	}
	if t.kind == str {
		s = strconv.Quote(s)
	}
	return "'" + s + "'"
}
