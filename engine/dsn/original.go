package dsn

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// maxHeaderSection bounds the search for the original message's header
// section, and so how much of the message is ever buffered.
const maxHeaderSection = 64 << 10

// original is the message a DSN is about. Its header section is found in
// the buffered first 64 KiB; r still yields the whole message from its
// start, for RET=FULL.
type original struct {
	r *bufio.Reader
	// header is the header section with CRLF line ends, ending in one.
	header []byte
	// messageID is its Message-ID without angle brackets; "" if it has none
	// that parses.
	messageID string
	// utf8 reports 8-bit bytes in the header section (RFC 6532 headers).
	utf8 bool
}

func readOriginal(r io.Reader) (*original, error) {
	br := bufio.NewReaderSize(r, maxHeaderSection)
	start, err := br.Peek(maxHeaderSection)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("dsn: reading the original message: %w", err)
	}
	var h bytes.Buffer
	cw := crlfWriter{w: &h}
	cw.Write(headerSection(start, err == io.EOF)) // a bytes.Buffer does not fail
	if h.Len() > 0 && !bytes.HasSuffix(h.Bytes(), []byte("\n")) {
		h.WriteString("\r\n")
	}
	return &original{
		r:         br,
		header:    h.Bytes(),
		messageID: messageID(h.Bytes()),
		utf8:      !isASCII(h.Bytes()),
	}, nil
}

// headerSection returns the start of msg through its first empty line (the
// bytes up to and including the first CRLFCRLF, or LFLF). Without one, it is
// all of msg if that is the whole message, else msg cut after its last line
// end, so a header section over 64 KiB comes back truncated.
func headerSection(msg []byte, whole bool) []byte {
	for i := 0; i < len(msg); {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			break
		}
		line := msg[i : i+j+1]
		i += j + 1
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return msg[:i]
		}
	}
	if whole {
		return msg
	}
	return msg[:bytes.LastIndexByte(msg, '\n')+1]
}

// messageID returns the Message-ID in a header section, best effort: a
// malformed field stops the parse but keeps the fields before it.
func messageID(header []byte) string {
	end := io.MultiReader(bytes.NewReader(header), bytes.NewReader([]byte("\r\n")))
	th, _ := textproto.ReadHeader(bufio.NewReader(end))
	h := mail.Header{Header: message.Header{Header: th}}
	id, err := h.MessageID()
	if err != nil {
		return ""
	}
	return id
}

// writeFull copies the whole message to w with CRLF line ends.
func (o *original) writeFull(w io.Writer) error {
	_, err := io.Copy(&crlfWriter{w: w}, o.r)
	return err
}
