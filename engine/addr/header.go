package addr

import (
	"errors"
	"fmt"
	"strings"

	// Registers every charset go-message knows with its word decoder, so
	// display names in e.g. ISO-2022-JP or KOI8-R decode too.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
)

// HeaderAddress is one mailbox from an address header field.
type HeaderAddress struct {
	// Name is the display name with RFC 2047 encoded words decoded; "" if
	// there is none.
	Name    string
	Mailbox Mailbox
}

// ParseHeaderAddressList parses an RFC 5322 address-list such as the value
// of From:, To: or Cc:. Groups are flattened into their members (an empty
// group such as "undisclosed-recipients:;" contributes nothing). Each
// address must also be a valid RFC 5321 mailbox, since that is what an MTA
// would have to send to. An empty or blank value is an error, as RFC 5322
// requires at least one address or group.
func ParseHeaderAddressList(s string) ([]HeaderAddress, error) {
	// net/mail (wrapped by go-message for charsets) handles the RFC 5322
	// grammar: comments, groups, obsolete forms and encoded words.
	list, err := mail.ParseAddressList(s)
	if err != nil {
		return nil, fmt.Errorf("invalid address list: %s", strings.TrimPrefix(err.Error(), "mail: "))
	}
	out := make([]HeaderAddress, 0, len(list))
	for i, a := range list {
		m, err := fromHeaderAddress(a.Address)
		if err != nil {
			return nil, fmt.Errorf("address %d (%s): %w", i+1, a.Address, err)
		}
		out = append(out, HeaderAddress{Name: a.Name, Mailbox: m})
	}
	return out, nil
}

// fromHeaderAddress re-checks an address net/mail returned. net/mail gives
// the local part unquoted, so the split is at the last '@' (domains never
// contain one) and the mailbox is re-quoted before parsing.
func fromHeaderAddress(s string) (Mailbox, error) {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Mailbox{}, errors.New("missing '@' in address")
	}
	return ParseMailbox(Mailbox{Local: s[:at], Domain: s[at+1:]}.String())
}
