package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The headers of a POST. The signature covers the timestamp and the body, so a receiver
// that checks both the signature and the timestamp's age refuses replays of old requests.
const (
	HeaderID        = "Koukan-Event-Id"
	HeaderTimestamp = "Koukan-Timestamp" // unix seconds of this POST
	HeaderSignature = "Koukan-Signature" // "sha256=" and the HMAC in lower-case hex
)

const signaturePrefix = "sha256="

// Sign returns the signature header value for body sent at timestamp (unix seconds, as in
// HeaderTimestamp): HMAC-SHA256 with secret over timestamp + "." + body.
func Sign(secret []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("webhook signature does not match")
	ErrStale        = errors.New("webhook timestamp is too far from now")
)

// Verify checks a received POST, for receivers written in Go: signature is the
// HeaderSignature value, timestamp the HeaderTimestamp one. A timestamp further than
// tolerance from now is refused, so that a recorded request cannot be replayed later.
func Verify(secret []byte, timestamp string, body []byte, signature string, now time.Time, tolerance time.Duration) error {
	hexSum, ok := strings.CutPrefix(signature, signaturePrefix)
	got, err := hex.DecodeString(hexSum)
	if !ok || err != nil || !hmac.Equal(got, mac(secret, timestamp, body)) {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	return nil
}
