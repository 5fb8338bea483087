package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/koukan/koukan/engine/store"
)

// The queue's depth by destination domain, for metrics, in the states of store.State that
// are not final (statePredicates decides which).

// queued is true of a transaction row t that is not final: it has no final reason, or it is
// oneshot while its one attempt runs.
const queued = `(t.final_attempt_reason IS NULL OR (t.final_attempt_reason = '` + store.FinalOneshot + `' AND t.inflight_session_id IS NOT NULL))`

// QueueDomains counts in the database, so that only the top domains and the rest's sums
// leave it, however many domains the queue holds.
func (s *Store) QueueDomains(ctx context.Context, top int) ([]store.DomainStats, error) {
	rows, err := s.rdb.QueryContext(ctx, s.q(`WITH counts AS (
			SELECT t.rcpt_domain AS domain, `+stateCase+` AS state, COUNT(*) AS n FROM transactions t
			WHERE `+queued+` GROUP BY 1, 2
		), leaders AS (
			SELECT domain FROM counts WHERE domain IS NOT NULL GROUP BY domain ORDER BY SUM(n) DESC, domain LIMIT ?
		)
		SELECT l.domain, c.state, CAST(SUM(c.n) AS BIGINT) FROM counts c LEFT JOIN leaders l ON l.domain = c.domain
		GROUP BY l.domain, c.state`), s.now(), max(top, 0))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byDomain := map[string]store.DomainStats{}
	for rows.Next() {
		var domain sql.NullString
		var st store.State
		var n int
		if err := rows.Scan(&domain, &st, &n); err != nil {
			return nil, err
		}
		d, ok := byDomain[domain.String]
		if !ok {
			d = store.DomainStats{Domain: domain.String, Counts: map[store.State]int{}}
			byDomain[domain.String] = d
		}
		d.Counts[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]store.DomainStats, 0, len(byDomain))
	for _, d := range byDomain {
		if d.Domain != "" {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b store.DomainStats) int {
		if c := cmp.Compare(total(b), total(a)); c != 0 {
			return c
		}
		return strings.Compare(a.Domain, b.Domain)
	})
	if rest, ok := byDomain[""]; ok {
		out = append(out, rest)
	}
	return out, nil
}

func total(d store.DomainStats) int {
	n := 0
	for _, c := range d.Counts {
		n += c
	}
	return n
}
