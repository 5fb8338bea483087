package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/koukan/koukan/engine/store"
)

// attachBlobs adds blob refs to a transaction: new empty or inline blobs, or references to
// finalized blobs of other transactions. It then recomputes input_done.
func (s *Store) attachBlobs(ctx context.Context, tx *sql.Tx, txID int64, blobs []store.NewBlob, now int64) error {
	if len(blobs) == 0 {
		return nil
	}
	for _, b := range blobs {
		if err := s.attachBlob(ctx, tx, txID, b, now); err != nil {
			return err
		}
	}
	return s.updateInputDone(ctx, tx, txID)
}

func (s *Store) attachBlob(ctx context.Context, tx *sql.Tx, txID int64, b store.NewBlob, now int64) error {
	blobKey, err := s.blobForRef(ctx, tx, b, now)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, tx, `INSERT INTO blob_refs (transaction_id, blob_rest_id, blob_id) VALUES (?, ?, ?)`,
		txID, b.ID, blobKey)
	return s.duplicate(err)
}

func (s *Store) blobForRef(ctx context.Context, tx *sql.Tx, b store.NewBlob, now int64) (int64, error) {
	if b.ID == "" {
		return 0, errors.New("store: blob without id")
	}
	if b.ReuseTx != "" {
		var key, length int64
		var total sql.NullInt64
		err := s.queryRow(ctx, tx, `SELECT b.id, b.length, b.total FROM transactions t
			JOIN blob_refs r ON r.transaction_id = t.id JOIN blobs b ON b.id = r.blob_id
			WHERE t.rest_id = ? AND r.blob_rest_id = ?`, b.ReuseTx, b.ReuseBlob).Scan(&key, &length, &total)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, &store.ReuseError{TxID: b.ReuseTx, BlobID: b.ReuseBlob, Reason: "no such blob"}
		}
		if err != nil {
			return 0, err
		}
		if !(store.BlobStatus{Length: length, Total: totalOf(total)}).Finalized() {
			return 0, &store.ReuseError{TxID: b.ReuseTx, BlobID: b.ReuseBlob, Reason: "blob is not finalized"}
		}
		return key, nil
	}
	var total any
	if b.Inline {
		total = int64(len(b.Content))
	}
	var key int64
	if err := s.queryRow(ctx, tx, `INSERT INTO blobs (length, total, creation, last_update) VALUES (?, ?, ?, ?) RETURNING id`,
		len(b.Content), total, now, now).Scan(&key); err != nil {
		return 0, err
	}
	for pos := 0; pos < len(b.Content); pos += s.opts.ChunkSize {
		piece := b.Content[pos:min(pos+s.opts.ChunkSize, len(b.Content))]
		if err := s.insertChunk(ctx, tx, key, int64(pos), piece); err != nil {
			return 0, err
		}
	}
	return key, nil
}

func (s *Store) insertChunk(ctx context.Context, tx *sql.Tx, blob, pos int64, data []byte) error {
	_, err := s.exec(ctx, tx, `INSERT INTO blob_chunks (blob_id, pos, data) VALUES (?, ?, ?)`, blob, pos, data)
	return err
}

// inputDone is the input_done of transaction ? (bound twice): it has blobs and every one is
// finalized, so the client is done writing.
const inputDone = `(EXISTS (SELECT 1 FROM blob_refs WHERE transaction_id = ?) AND NOT EXISTS (
	SELECT 1 FROM blob_refs r JOIN blobs b ON b.id = r.blob_id
	WHERE r.transaction_id = ? AND (b.total IS NULL OR b.length <> b.total)))`

func (s *Store) updateInputDone(ctx context.Context, tx *sql.Tx, txID int64) error {
	_, err := s.exec(ctx, tx, `UPDATE transactions SET input_done = `+inputDone+` WHERE id = ?`, txID, txID, txID)
	return err
}

// blobRef locates a transaction's blob for writing or reading.
type blobRef struct {
	txID, blob int64
	status     store.BlobStatus
	lease      store.Lease
}

func (s *Store) findBlob(ctx context.Context, restID, blobID string) (blobRef, error) {
	var r blobRef
	var total, inflight sql.NullInt64
	var uri sql.NullString
	var live sql.NullBool
	err := s.readRow(ctx, `SELECT t.id, b.id, b.length, b.total, t.inflight_session_id, s.uri, s.live
		FROM transactions t JOIN blob_refs r ON r.transaction_id = t.id JOIN blobs b ON b.id = r.blob_id
		LEFT JOIN sessions s ON s.id = t.inflight_session_id
		WHERE t.rest_id = ? AND r.blob_rest_id = ?`, restID, blobID).
		Scan(&r.txID, &r.blob, &r.status.Length, &total, &inflight, &uri, &live)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("blob %q of transaction %q: %w", blobID, restID, store.ErrNotFound)
	}
	r.status.Total = totalOf(total)
	r.lease = s.lease(inflight, uri, live)
	return r, err
}

// Piece buffers: small ones first, so that an upload of a few kilobytes (most messages)
// does not hold a whole chunk's memory while it commits; a chunk-size one once an upload
// turns out bigger.
var smallPool, chunkPool sync.Pool

const smallPiece = 16 << 10

func pooled(p *sync.Pool, size int) *[]byte {
	if b, _ := p.Get().(*[]byte); b != nil && len(*b) == size {
		return b
	}
	b := make([]byte, size)
	return &b
}

func (s *Store) AppendBlob(ctx context.Context, restID, blobID string, a store.Append, r io.Reader) (store.BlobStatus, error) {
	ref, err := s.findBlob(ctx, restID, blobID)
	if errors.Is(err, store.ErrNotFound) && a.Create && a.Offset == 0 {
		ref, err = s.createBlob(ctx, restID, blobID)
	}
	if err != nil {
		return store.BlobStatus{}, err
	}
	if ref.lease.OwnerURI != "" {
		return ref.status, &store.LeasedError{OwnerURI: ref.lease.OwnerURI}
	}
	small := pooled(&smallPool, min(smallPiece, s.opts.ChunkSize))
	defer smallPool.Put(small)
	var chunk *[]byte
	defer func() {
		if chunk != nil {
			chunkPool.Put(chunk)
		}
	}()

	offset, st := a.Offset, ref.status
	for first := true; ; first = false {
		buf := *small
		if chunk != nil {
			buf = *chunk
		}
		n, rerr := io.ReadFull(r, buf)
		if rerr == nil && chunk == nil && len(buf) < s.opts.ChunkSize {
			// More than a small piece: the rest of this one goes into a chunk.
			chunk = pooled(&chunkPool, s.opts.ChunkSize)
			copy(*chunk, buf)
			var m int
			m, rerr = io.ReadFull(r, (*chunk)[n:])
			buf, n = *chunk, n+m
		}
		eof := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !eof {
			// The client's stream broke: what was committed stays, and the client resyncs
			// from the length it gets back.
			return st, rerr
		}
		if n > 0 || first || (eof && (a.FinalizeAtEOF || a.Total >= 0)) {
			if st, err = s.appendPiece(ctx, ref, offset, buf[:n], a, eof); err != nil {
				return st, err
			}
		}
		offset += int64(n)
		if eof {
			return st, nil
		}
	}
}

// appendPiece writes one piece at offset, dropping what the blob already holds (a client
// resending after a broken upload), and finalizes the blob when the piece completes it.
func (s *Store) appendPiece(ctx context.Context, ref blobRef, offset int64, data []byte, a store.Append, last bool) (store.BlobStatus, error) {
	var st store.BlobStatus
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var total sql.NullInt64
		if err := s.queryRow(ctx, tx, `SELECT length, total FROM blobs WHERE id = ?`+s.d.ForUpdate, ref.blob).
			Scan(&st.Length, &total); err != nil {
			return err
		}
		st.Total = totalOf(total)
		was := st.Finalized()
		if a.Total >= 0 && st.Total >= 0 && a.Total != st.Total {
			return &store.RangeError{Current: st, Reason: fmt.Sprintf("declared length %d differs from %d", a.Total, st.Total)}
		}
		if offset > st.Length {
			return &store.RangeError{Current: st, Reason: fmt.Sprintf("gap: write at %d", offset)}
		}
		end := offset + int64(len(data))
		if last && a.FinalizeAtEOF && end < st.Length {
			return &store.RangeError{Current: st, Reason: fmt.Sprintf("the body ends at %d but the blob already holds more", end)}
		}
		if skip := st.Length - offset; skip >= int64(len(data)) {
			data = nil
		} else {
			data = data[skip:]
		}
		newLen, newTotal := st.Length+int64(len(data)), st.Total
		if a.Total >= 0 {
			newTotal = a.Total
		}
		if last && a.FinalizeAtEOF {
			if newTotal >= 0 && newTotal != newLen {
				return &store.RangeError{Current: st, Reason: fmt.Sprintf("blob is %d bytes, declared %d", newLen, newTotal)}
			}
			newTotal = newLen
		}
		if newTotal >= 0 && newLen > newTotal {
			return &store.RangeError{Current: st, Reason: fmt.Sprintf("write past declared length %d", newTotal)}
		}
		next := store.BlobStatus{Length: newLen, Total: newTotal}
		if len(data) == 0 && next == st {
			return nil
		}
		if len(data) > 0 {
			if err := s.insertChunk(ctx, tx, ref.blob, st.Length, data); err != nil {
				return err
			}
		}
		var totalArg any
		if newTotal >= 0 {
			totalArg = newTotal
		}
		now := s.now()
		if _, err := s.exec(ctx, tx, `UPDATE blobs SET length = ?, total = ?, last_update = ? WHERE id = ?`,
			newLen, totalArg, now, ref.blob); err != nil {
			return err
		}
		st = next
		if !st.Finalized() || was {
			return nil
		}
		// The blob is complete: wake the transaction, unless another replica has taken it
		// over meanwhile, in which case the client must finish there.
		res, err := s.exec(ctx, tx, `UPDATE transactions SET version = version + 1, last_update = ?,
				input_done = `+inputDone+`
			WHERE id = ? AND (inflight_session_id IS NULL OR inflight_session_id = ?
				OR inflight_session_id NOT IN (SELECT id FROM sessions WHERE live AND uri <> ?))`,
			now, ref.txID, ref.txID, ref.txID, s.session, s.opts.SessionURI)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var inflight sql.NullInt64
		var uri sql.NullString
		var live sql.NullBool
		if err := s.queryRow(ctx, tx, `SELECT t.inflight_session_id, s.uri, s.live FROM transactions t
			LEFT JOIN sessions s ON s.id = t.inflight_session_id WHERE t.id = ?`, ref.txID).Scan(&inflight, &uri, &live); err != nil {
			return err
		}
		return &store.LeasedError{OwnerURI: s.lease(inflight, uri, live).OwnerURI}
	})
	return st, err
}

// createBlob makes an empty blob under blobID for a transaction that has none yet (the
// first PUT of an incremental transaction's body). A concurrent creator wins harmlessly.
func (s *Store) createBlob(ctx context.Context, restID, blobID string) (blobRef, error) {
	err := s.c.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var id int64
		err := s.queryRow(ctx, tx, `SELECT id FROM transactions WHERE rest_id = ?`, restID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("transaction %q: %w", restID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE transactions SET version = version + 1, last_update = ? WHERE id = ?`,
			s.now(), id); err != nil {
			return err
		}
		err = s.attachBlobs(ctx, tx, id, []store.NewBlob{{ID: blobID}}, s.now())
		if errors.Is(err, store.ErrDuplicate) {
			return nil
		}
		return err
	})
	if err != nil {
		return blobRef{}, err
	}
	return s.findBlob(ctx, restID, blobID)
}

func (s *Store) OpenBlob(ctx context.Context, restID, blobID string) (io.ReadCloser, store.BlobStatus, error) {
	ref, err := s.findBlob(ctx, restID, blobID)
	if err != nil {
		return nil, store.BlobStatus{}, err
	}
	return &blobReader{s: s, ctx: ctx, blob: ref.blob, end: ref.status.Length}, ref.status, nil
}

// blobReader fetches one chunk row at a time, so that a reader holds neither a whole body in
// memory nor a database cursor open while a slow peer consumes it.
type blobReader struct {
	s    *Store
	ctx  context.Context
	blob int64
	pos  int64
	end  int64
	buf  []byte
}

func (b *blobReader) Read(p []byte) (int, error) {
	if len(b.buf) == 0 {
		if b.pos >= b.end {
			return 0, io.EOF
		}
		var data []byte
		err := b.s.readRow(b.ctx, `SELECT data FROM blob_chunks WHERE blob_id = ? AND pos = ?`, b.blob, b.pos).Scan(&data)
		if err != nil {
			return 0, fmt.Errorf("reading blob at %d: %w", b.pos, err)
		}
		if len(data) == 0 {
			return 0, fmt.Errorf("reading blob at %d: empty chunk", b.pos)
		}
		b.buf = data
		b.pos += int64(len(data))
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *blobReader) Close() error { return nil }
