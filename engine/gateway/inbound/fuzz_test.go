package inbound

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/koukan/koukan/engine/rest/resttest"
)

// FuzzSession feeds arbitrary client input to a gateway in front of a REST receiver: the
// server never panics and always answers with well-formed SMTP reply lines.
func FuzzSession(f *testing.F) {
	f.Add("EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n")
	f.Add("HELO x\r\nMAIL FROM:<> SIZE=99999999999999999999\r\nRSET\r\nBDAT 5 LAST\r\nhello")
	f.Add("EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTARTTLS\r\nNOOP\r\n\x00\xff\r\n")
	e := start(f, Options{}, resttest.Options{})
	f.Fuzz(func(t *testing.T, input string) {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		go func() {
			c.Write([]byte(input))
			c.(*net.TCPConn).CloseWrite()
		}()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			if len(line) < 5 || line[0] < '2' || line[0] > '5' || (line[3] != ' ' && line[3] != '-') {
				t.Fatalf("a malformed reply line %q to %q", line, input)
			}
		}
		if n := e.srv.Panics(); n != 0 {
			t.Fatalf("%d panics after %q", n, input)
		}
	})
}
