package admin

import (
	"encoding/base64"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/koukan/koukan/engine/addr"
	"github.com/koukan/koukan/engine/httpapi"
	"github.com/koukan/koukan/engine/store"
	"github.com/koukan/koukan/engine/tx"
)

// Page sizes of GET /admin/transactions.
const (
	defaultLimit = 50
	maxLimit     = 1000
)

// TxView is a transaction as the admin API lists it.
type TxView struct {
	ID     string `json:"id"`
	Sender string `json:"sender,omitempty"`
	// MailFrom is "" for the null reverse path (and before MAIL, for an incremental
	// transaction).
	MailFrom string      `json:"mail_from"`
	RcptTo   []string    `json:"rcpt_to"`
	Domain   string      `json:"rcpt_domain,omitempty"`
	State    store.State `json:"state"`
	Attempts int         `json:"attempt_count"`
	// NextAttempt is when the next attempt is due, for a queued transaction (due,
	// deferred or held).
	NextAttempt        *time.Time `json:"next_attempt,omitempty"`
	Created            time.Time  `json:"created"`
	LastUpdate         time.Time  `json:"last_update"`
	FinalAttemptReason string     `json:"final_attempt_reason,omitempty"`
	// LastReply is the latest attempt's reply that says most: its first failure, or else
	// its last answer.
	LastReply *Reply `json:"last_reply,omitempty"`
}

// Next says when the next attempt comes, as of now: "on resume" for a held transaction,
// "now" for a due one, "in 4m" for a deferred one, "" for one not queued.
func (v TxView) Next(now time.Time) string {
	switch {
	case v.NextAttempt == nil:
		return ""
	case v.State == store.StateHeld:
		return "on resume"
	case !v.NextAttempt.After(now):
		return "now"
	}
	return Relative(v.NextAttempt.Sub(now))
}

// Reply is one SMTP reply of an attempt, with the stage it answered: mail, rcpt or data.
type Reply struct {
	Stage   string `json:"stage"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// DetailView is one transaction with every attempt's replies.
type DetailView struct {
	TxView
	AttemptList []AttemptView `json:"attempts"`
}

// AttemptView is one attempt and the replies it got.
type AttemptView struct {
	Attempt      int           `json:"attempt"`
	Started      time.Time     `json:"started"`
	LastUpdate   time.Time     `json:"last_update"`
	MailResponse *tx.Response  `json:"mail_response,omitempty"`
	RcptResponse []tx.Response `json:"rcpt_response,omitempty"`
	DataResponse *tx.Response  `json:"data_response,omitempty"`
}

// ListView is a page of GET /admin/transactions; NextCursor fetches the next one.
type ListView struct {
	Transactions []TxView `json:"transactions"`
	NextCursor   string   `json:"next_cursor,omitempty"`
}

// DomainView is a suspended destination domain and how many queued transactions it holds.
type DomainView struct {
	Domain         string    `json:"domain"`
	SuspendedSince time.Time `json:"suspended_since"`
	Held           int       `json:"held"`
}

// DomainsView is GET /admin/domains.
type DomainsView struct {
	Domains []DomainView `json:"domains"`
}

// ResumedView is the answer to a resume.
type ResumedView struct {
	Domain    string `json:"domain"`
	Suspended bool   `json:"suspended"`
}

// view turns a stored summary into its view. A document that does not parse (it never
// should) leaves the envelope out rather than the transaction.
func view(s store.Summary) TxView {
	v := TxView{ID: s.RestID, Sender: s.Sender, Domain: s.RcptDomain, State: s.State, Attempts: s.AttemptCount,
		Created: s.Creation.UTC(), LastUpdate: s.LastUpdate.UTC(), FinalAttemptReason: s.FinalAttemptReason, RcptTo: []string{}}
	if v.FinalAttemptReason == store.FinalOneshot {
		v.FinalAttemptReason = "" // the internal mark of a transaction without retries
	}
	switch s.State {
	case store.StateDue, store.StateDeferred, store.StateHeld:
		next := s.NextAttempt.UTC()
		v.NextAttempt = &next
	}
	if t, err := tx.Parse(s.JSON, tx.DB); err == nil {
		if t.MailFrom != nil {
			v.MailFrom = t.MailFrom.Address
		}
		for _, r := range t.RcptTo {
			v.RcptTo = append(v.RcptTo, r.Address)
		}
	}
	if s.Responses != nil {
		if r, err := tx.Parse(s.Responses, tx.DBAttempt); err == nil {
			v.LastReply = lastReply(r)
		}
	}
	return v
}

// lastReply is the reply that explains an attempt best: the first failure, or the last
// answer.
func lastReply(t *tx.Tx) *Reply {
	reply := func(stage string, r tx.Response) *Reply { return &Reply{stage, r.Code, r.Message} }
	if m := t.MailResponse; m != nil && !m.Ok() {
		return reply("mail", *m)
	}
	for _, r := range t.RcptResponse {
		if !r.Ok() {
			return reply("rcpt", r)
		}
	}
	switch {
	case t.DataResponse != nil:
		return reply("data", *t.DataResponse)
	case len(t.RcptResponse) > 0:
		return reply("rcpt", t.RcptResponse[len(t.RcptResponse)-1])
	case t.MailResponse != nil:
		return reply("mail", *t.MailResponse)
	}
	return nil
}

// list is GET /admin/transactions?state=&sender=&rcpt_domain=&since=&limit=&cursor=.
func (a *Admin) list(w http.ResponseWriter, r *http.Request) error {
	q, err := listQuery(r.URL.Query(), time.Now())
	if err != nil {
		return err
	}
	limit := q.Limit
	q.Limit++ // one more tells whether there is a next page
	rows, err := a.o.Store.List(r.Context(), q)
	if err != nil {
		return err
	}
	out := ListView{Transactions: []TxView{}}
	if len(rows) > limit {
		rows = rows[:limit]
		out.NextCursor = cursor(rows[limit-1].ID)
	}
	for _, s := range rows {
		out.Transactions = append(out.Transactions, view(s))
	}
	httpapi.WriteJSONLine(w, http.StatusOK, out)
	return nil
}

// listQuery reads the list's query parameters; an unknown one is a mistake too.
func listQuery(params url.Values, now time.Time) (store.ListQuery, error) {
	q := store.ListQuery{Limit: defaultLimit}
	for _, name := range slices.Sorted(maps.Keys(params)) {
		if len(params[name]) > 1 {
			return q, badParam(name, "given more than once")
		}
		v := params.Get(name)
		switch name {
		case "state":
			if !slices.Contains(store.States, store.State(v)) {
				return q, badParam(name, "%q is not a state: want one of %s", v, stateNames())
			}
			q.State = store.State(v)
		case "sender":
			if v == "" {
				return q, badParam(name, "empty")
			}
			q.Sender = v
		case "rcpt_domain":
			d, err := domainParam(name, v)
			if err != nil {
				return q, err
			}
			q.RcptDomain = d
		case "since":
			t, err := sinceParam(v, now)
			if err != nil {
				return q, err
			}
			q.Since = t
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxLimit {
				return q, badParam(name, "%q is not a number from 1 to %d", v, maxLimit)
			}
			q.Limit = n
		case "cursor":
			id, ok := parseCursor(v)
			if !ok {
				return q, badParam(name, "not a cursor this API gave out (next_cursor)")
			}
			q.Before = id
		default:
			return q, badParam(name, "unknown parameter: the list takes state, sender, rcpt_domain, since, limit and cursor")
		}
	}
	return q, nil
}

func stateNames() string {
	var names []string
	for _, s := range store.States {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

// sinceParam is an RFC 3339 time, or a duration back from now ("90m", "24h").
func sinceParam(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, badParam("since", "%q is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor a duration back from now (90m, 24h)", v)
}

// domainParam is a domain as suspensions and the rcpt_domain column hold it: lower-case
// A-labels, without a trailing dot.
func domainParam(name, v string) (string, error) {
	m, err := addr.ParseMailbox("postmaster@" + strings.TrimSuffix(v, "."))
	if err == nil {
		var d string
		if d, err = m.ASCIIDomain(); err == nil {
			return d, nil
		}
	}
	return "", badParam(name, "%q is not a domain name: %v", v, err)
}

// A cursor is the ID of the last transaction of a page; clients treat it as opaque.
func cursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("before:" + strconv.FormatInt(id, 10)))
}

func parseCursor(v string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return 0, false
	}
	n, ok := strings.CutPrefix(string(b), "before:")
	id, err := strconv.ParseInt(n, 10, 64)
	return id, ok && err == nil && id > 0
}

// show is GET /admin/transactions/{id}.
func (a *Admin) show(w http.ResponseWriter, r *http.Request) error {
	d, err := a.detail(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSONLine(w, http.StatusOK, d)
	return nil
}

// detail reads one transaction with its attempts.
func (a *Admin) detail(r *http.Request, id string) (*DetailView, error) {
	rows, err := a.o.Store.List(r.Context(), store.ListQuery{RestID: id, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, store.ErrNotFound
	}
	attempts, err := a.o.Store.Attempts(r.Context(), id)
	if err != nil {
		return nil, err
	}
	d := &DetailView{TxView: view(rows[0]), AttemptList: []AttemptView{}}
	for _, at := range attempts {
		av := AttemptView{Attempt: at.ID, Started: at.Creation.UTC(), LastUpdate: at.LastUpdate.UTC()}
		if at.Responses != nil {
			if t, err := tx.Parse(at.Responses, tx.DBAttempt); err == nil {
				av.MailResponse, av.RcptResponse, av.DataResponse = t.MailResponse, t.RcptResponse, t.DataResponse
			}
		}
		d.AttemptList = append(d.AttemptList, av)
	}
	return d, nil
}

// retry is POST /admin/transactions/{id}/retry: a queued transaction becomes due now.
func (a *Admin) retry(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := a.o.Transactions.RetryNow(r.Context(), id); err != nil {
		return err
	}
	return a.show(w, r)
}

// cancel is POST /admin/transactions/{id}/cancel, as POST /transactions/{tx}/cancel: a
// no-op on a final transaction.
func (a *Admin) cancel(w http.ResponseWriter, r *http.Request) error {
	if err := a.o.Transactions.Cancel(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	return a.show(w, r)
}

// domains is GET /admin/domains: the suspended destination domains.
func (a *Admin) domains(w http.ResponseWriter, r *http.Request) error {
	list, err := a.suspended(r)
	if err != nil {
		return err
	}
	httpapi.WriteJSONLine(w, http.StatusOK, DomainsView{list})
	return nil
}

func (a *Admin) suspended(r *http.Request) ([]DomainView, error) {
	list, err := a.o.Store.SuspendedDomains(r.Context())
	out := []DomainView{}
	for _, d := range list {
		out = append(out, DomainView{d.Domain, d.Since.UTC(), d.Held})
	}
	return out, err
}

// suspend is POST /admin/domains/{domain}/suspend; suspending a suspended domain changes
// nothing.
func (a *Admin) suspend(w http.ResponseWriter, r *http.Request) error {
	d, err := domainParam("domain", r.PathValue("domain"))
	if err != nil {
		return err
	}
	if _, err := a.o.Store.SuspendDomain(r.Context(), d); err != nil {
		return err
	}
	list, err := a.suspended(r)
	if err != nil {
		return err
	}
	for _, v := range list {
		if v.Domain == d {
			httpapi.WriteJSONLine(w, http.StatusOK, v)
			return nil
		}
	}
	// Resumed by someone else in between.
	httpapi.WriteJSONLine(w, http.StatusOK, ResumedView{Domain: d})
	return nil
}

// resume is POST /admin/domains/{domain}/resume; the domain must be suspended.
func (a *Admin) resume(w http.ResponseWriter, r *http.Request) error {
	d, err := domainParam("domain", r.PathValue("domain"))
	if err != nil {
		return err
	}
	resumed, err := a.o.Store.ResumeDomain(r.Context(), d)
	if err != nil {
		return err
	}
	if !resumed {
		return httpapi.Problem(http.StatusNotFound, "domain_not_suspended", "%s is not suspended", d)
	}
	httpapi.WriteJSONLine(w, http.StatusOK, ResumedView{Domain: d})
	return nil
}
