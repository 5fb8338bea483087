package tx

// Final attempt reasons (spec section 3.6). A transaction with one of these
// in FinalAttemptReason is finished, except ReasonOneshot.
const (
	ReasonUpstreamSuccess     = "upstream response success"
	ReasonUpstreamPermfail    = "upstream response permfail"
	ReasonMailPermfail        = "upstream mail_response permfail"
	ReasonRcptPermfail        = "upstream rcpt_response permfail"
	ReasonAllRcptsFailed      = "exploder/oneshot all rcpts failed"
	ReasonDownstreamTimeout   = "downstream timeout"
	ReasonDownstreamCancelled = "downstream cancelled"
	ReasonMaxAttempts         = "retry policy max attempts"
	ReasonDeadline            = "retry policy deadline"
	// ReasonOneshot marks a temporary failure of a transaction without
	// retries; it is internal and never shown to clients. Setting retry or
	// notification later clears it.
	ReasonOneshot = "oneshot"
)
