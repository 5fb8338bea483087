package tx

import (
	"errors"
	"net/url"
	"strings"
)

// TxBodyBlobID is the blob id under which a transaction's own body (as opposed
// to a message-builder part) is stored. Client blob ids may not use the
// "__internal" prefix, so they can never collide with it.
const TxBodyBlobID = "__internal_tx_body"

const reservedBlobPrefix = "__internal"

var errReuseURI = errors.New("must be a URI whose path is /transactions/{tx}/body or /transactions/{tx}/blob/{blob}")

// ParseReuseURI reads the path of a blob URI, /transactions/{tx}/body or
// /transactions/{tx}/blob/{blob}; the scheme and host are ignored because
// blobs are found through the shared store, not the replica that served them.
// A tx body comes back as blob id TxBodyBlobID.
func ParseReuseURI(uri string) (txID, blobID string, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", errReuseURI
	}
	segs := strings.Split(u.EscapedPath(), "/")
	for i, s := range segs {
		if segs[i], err = url.PathUnescape(s); err != nil {
			return "", "", errReuseURI
		}
	}
	switch {
	case len(segs) == 4 && segs[0] == "" && segs[1] == "transactions" && segs[3] == "body":
		txID, blobID = segs[2], TxBodyBlobID
	case len(segs) == 5 && segs[0] == "" && segs[1] == "transactions" && segs[3] == "blob":
		txID, blobID = segs[2], segs[4]
		if err := checkBlobID(blobID); err != nil {
			return "", "", err
		}
	default:
		return "", "", errReuseURI
	}
	if txID == "" || strings.Contains(txID, "/") || hasControl(txID) {
		return "", "", errReuseURI
	}
	return txID, blobID, nil
}

// BlobPath is the path of a blob of transaction txID, the inverse of
// ParseReuseURI; the REST layer prefixes it with a service or session URI.
func BlobPath(txID, blobID string) string {
	p := "/transactions/" + url.PathEscape(txID)
	if blobID == TxBodyBlobID {
		return p + "/body"
	}
	return p + "/blob/" + url.PathEscape(blobID)
}

// checkBlobID validates a blob id chosen by a client.
func checkBlobID(id string) error {
	switch {
	case id == "":
		return errors.New("blob id must not be empty")
	case strings.HasPrefix(id, reservedBlobPrefix):
		return errors.New("blob ids starting with " + reservedBlobPrefix + " are reserved")
	case strings.Contains(id, "/") || hasControl(id):
		return errors.New("blob id must not contain / or control characters")
	}
	return nil
}
