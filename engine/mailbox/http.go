package mailbox

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
)

// Handler serves the mailbox to people and scripts:
//
//	GET /mailbox        the messages, oldest first, as JSON
//	GET /mailbox/{id}   one message, as message/rfc822
func (m *Mailbox) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mailbox", func(w http.ResponseWriter, _ *http.Request) {
		list, err := m.List()
		if err != nil {
			m.Log.Error("mailbox: listing", "err", err)
			http.Error(w, `{"error":{"code":"mailbox_unavailable","message":"the mailbox cannot be read"}}`, http.StatusServiceUnavailable)
			return
		}
		if list == nil {
			list = []Message{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("GET /mailbox/{id}", func(w http.ResponseWriter, r *http.Request) {
		f, err := m.Open(r.PathValue("id"))
		if errors.Is(err, os.ErrNotExist) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"unknown_message","message":"no such message in the mailbox"}}`)
			return
		}
		if err != nil {
			m.Log.Error("mailbox: reading", "err", err)
			http.Error(w, `{"error":{"code":"mailbox_unavailable","message":"the mailbox cannot be read"}}`, http.StatusServiceUnavailable)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "message/rfc822")
		io.Copy(w, f)
	})
	return mux
}
