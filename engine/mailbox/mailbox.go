// Package mailbox is the local mailbox of `koukan serve`: an LMTP server on loopback that
// stores each message it is given as a .eml file, and an HTTP handler that lists them.
//
// Mail reaches it the way it reaches any mailbox server: the router routes @localhost to the
// gateway, whose LMTP client delivers here. So the local path is the real one, end to end.
//
// Invariant: a recipient gets 250 only once its file is written, synced and renamed into
// place (with the directory synced), so an acknowledged message survives a crash.
package mailbox

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Mailbox stores messages in Dir, one file per message and recipient.
type Mailbox struct {
	Dir string
	Log *slog.Logger

	mu  sync.Mutex
	srv *smtp.Server
}

// New makes a mailbox in dir, creating it if needed.
func New(dir string, log *slog.Logger) (*Mailbox, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mailbox{Dir: dir, Log: log}, nil
}

// ServeLMTP accepts LMTP connections on ln until Close.
func (m *Mailbox) ServeLMTP(ln net.Listener) error {
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{m: m}, nil }))
	s.LMTP = true
	s.Domain = "localhost"
	s.EnableSMTPUTF8 = true
	s.MaxMessageBytes = 64 << 20
	s.ReadTimeout, s.WriteTimeout = 5*time.Minute, time.Minute
	m.mu.Lock()
	m.srv = s
	m.mu.Unlock()
	err := s.Serve(ln)
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the LMTP server.
func (m *Mailbox) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srv == nil {
		return nil
	}
	return m.srv.Close()
}

// session is one LMTP connection.
type session struct {
	m     *Mailbox
	from  string
	rcpts []string
}

func (s *session) Reset()        { s.from, s.rcpts = "", nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}

// Data is not used over LMTP, where LMTPData answers each recipient.
func (s *session) Data(r io.Reader) error {
	return s.LMTPData(r, statusFunc(func(string, error) {}))
}

type statusFunc func(string, error)

func (f statusFunc) SetStatus(rcpt string, err error) { f(rcpt, err) }

// LMTPData stores the message for each recipient; one that cannot be stored gets a
// temporary failure of its own. Statuses go out only once the spool file is gone, so a
// client that has its answers never sees a half-finished delivery on disk.
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	results, err := s.store(r)
	if err != nil {
		s.m.Log.Error("mailbox: cannot store a message", "err", err)
		return tempFail
	}
	for i, rcpt := range s.rcpts {
		status.SetStatus(rcpt, results[i])
	}
	return nil
}

// store spools the message once, then writes each recipient's copy; the result for a
// recipient is nil or tempFail.
func (s *session) store(r io.Reader) ([]error, error) {
	tmp, err := os.CreateTemp(s.m.Dir, ".incoming-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, r); err != nil {
		return nil, err
	}
	results := make([]error, len(s.rcpts))
	for i, rcpt := range s.rcpts {
		id, err := s.m.deliver(tmp, rcpt)
		if err != nil {
			s.m.Log.Error("mailbox: cannot store a message", "rcpt", rcpt, "err", err)
			results[i] = tempFail
			continue
		}
		s.m.Log.Info("mailbox: delivered", "rcpt", rcpt, "from", s.from, "id", id)
	}
	return results, nil
}

var tempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store the message now"}

// deliver writes one recipient's copy: Delivered-To (RFC 9228) on top of the message, synced,
// then renamed into place and the directory synced.
func (m *Mailbox) deliver(msg *os.File, rcpt string) (string, error) {
	if _, err := msg.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	id := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(rnd[:])
	f, err := os.CreateTemp(m.Dir, ".deliver-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "Delivered-To: %s\r\n", rcpt)
	_, err = io.Copy(w, msg)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(m.Dir, id+".eml"))
	}
	if err == nil {
		err = syncDir(m.Dir)
	}
	return id, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Message is one stored message as the listing shows it.
type Message struct {
	ID       string    `json:"id"`
	To       string    `json:"to"`
	From     string    `json:"from,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	Size     int64     `json:"size"`
	Received time.Time `json:"received"`
}

// List returns the stored messages, oldest first.
func (m *Mailbox) List() ([]Message, error) {
	entries, err := os.ReadDir(m.Dir)
	if err != nil {
		return nil, err
	}
	var out []Message
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".eml")
		if !ok || strings.HasPrefix(id, ".") {
			continue
		}
		msg, err := m.summary(id)
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, msg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *Mailbox) summary(id string) (Message, error) {
	f, err := os.Open(filepath.Join(m.Dir, id+".eml"))
	if err != nil {
		return Message{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Message{}, err
	}
	msg := Message{ID: id, Size: fi.Size(), Received: fi.ModTime().UTC()}
	if parsed, err := mail.ReadMessage(bufio.NewReader(io.LimitReader(f, 1<<20))); err == nil {
		h := parsed.Header
		msg.To, msg.From, msg.Subject = h.Get("Delivered-To"), h.Get("From"), h.Get("Subject")
		if s, err := new(mime.WordDecoder).DecodeHeader(msg.Subject); err == nil {
			msg.Subject = s
		}
	}
	return msg, nil
}

// Open returns a stored message's bytes.
func (m *Mailbox) Open(id string) (*os.File, error) {
	if id == "" || strings.ContainsAny(id, "/\\") || strings.HasPrefix(id, ".") {
		return nil, os.ErrNotExist
	}
	return os.Open(filepath.Join(m.Dir, id+".eml"))
}
