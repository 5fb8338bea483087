package tx

// Context names one place a transaction is serialized. Each context carries its
// own subset of the fields (see fields.go).
type Context uint8

const (
	RestRead       Context = iota // GET responses; request fields as placeholders
	RestCreate                    // POST /senders/{sender}/transactions body
	RestUpdate                    // PATCH /transactions/{tx} body
	DB                            // the transaction row
	DBAttempt                     // the responses of one attempt
	ExploderCreate                // copied into a new per-recipient transaction
	ExploderUpdate                // later changes copied into it
	AddRoute                      // copied by add_route into its side transaction
	numContexts
)

// Contexts lists every context, for callers and tests that iterate over them.
var Contexts = []Context{RestRead, RestCreate, RestUpdate, DB, DBAttempt, ExploderCreate, ExploderUpdate, AddRoute}

var contextNames = [numContexts]string{
	"REST_READ", "REST_CREATE", "REST_UPDATE", "DB", "DB_ATTEMPT", "EXPLODER_CREATE", "EXPLODER_UPDATE", "ADD_ROUTE",
}

func (c Context) String() string {
	if c < numContexts {
		return contextNames[c]
	}
	return "unknown context"
}

// contextSet is a set of contexts, one bit each.
type contextSet uint16

func in(cs ...Context) contextSet {
	var s contextSet
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

func (s contextSet) has(c Context) bool { return c < numContexts && s&(1<<c) != 0 }
