package dsn

// Action is what happened to one recipient (RFC 3464 §2.3.3). The zero value
// is invalid, so a forgotten Action is caught by Build.
type Action uint8

const (
	ActionFailed Action = iota + 1
	ActionDelayed
	ActionDelivered
	// ActionRelayed: handed to a next hop that does not send DSNs.
	ActionRelayed
)

// String is the Action field's keyword.
func (a Action) String() string {
	switch a {
	case ActionFailed:
		return "failed"
	case ActionDelayed:
		return "delayed"
	case ActionDelivered:
		return "delivered"
	case ActionRelayed:
		return "relayed"
	}
	return "invalid"
}

func (a Action) valid() bool { return a >= ActionFailed && a <= ActionRelayed }
