package dsn

import (
	"bytes"
	"io"
)

// crlfWriter writes to w with every bare LF turned into CRLF, so a message
// stored with Unix line ends still goes out as SMTP requires. It remembers
// whether the last byte written was CR, so a CRLF split across two writes
// stays one line end.
type crlfWriter struct {
	w       io.Writer
	afterCR bool
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	start := 0 // p[start:] is not written yet
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		lf := i + j
		i = lf + 1
		if lf > 0 && p[lf-1] == '\r' || lf == 0 && c.afterCR {
			continue
		}
		if _, err := c.w.Write(p[start:lf]); err != nil {
			return start, err
		}
		if _, err := io.WriteString(c.w, "\r\n"); err != nil {
			return lf, err
		}
		start = lf + 1
	}
	if _, err := c.w.Write(p[start:]); err != nil {
		return start, err
	}
	if len(p) > 0 {
		c.afterCR = p[len(p)-1] == '\r'
	}
	return len(p), nil
}
