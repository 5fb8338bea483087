package tx

// The helpers below encode SMTP's command sequencing (a RCPT after a failed
// MAIL, DATA after every RCPT failed) for code that drives or fakes an
// upstream: the output handler, the exploder, the REST client.

var (
	errMailFailed     = Response{503, "5.5.1 failed precondition: MAIL"}
	errAllRcptsFailed = Response{503, "5.5.1 failed precondition: all rcpts failed"}
)

// ReqInflight reports whether some request still awaits a response that can
// still come: MAIL without a reply; otherwise (and unless MAIL failed) a
// recipient without a reply; otherwise, once the body is complete and some
// recipient was accepted, DATA without a reply.
func (t *Tx) ReqInflight() bool {
	switch {
	case t.MailFrom != nil && t.MailResponse == nil:
		return true
	case t.MailResponse != nil && t.MailResponse.Err():
		return false
	case len(t.RcptTo) > len(t.RcptResponse):
		return true
	case t.Body == nil || !t.Body.Complete():
		return false
	case !t.rcptOk():
		return false
	}
	return t.DataResponse == nil
}

// FillInflightResponses answers every request that has no response yet with
// resp, e.g. when the upstream failed or timed out. Recipients after a failed
// MAIL get 503 "failed precondition: MAIL" instead; a body whose recipients
// all failed gets 503 "failed precondition: all rcpts failed".
func (t *Tx) FillInflightResponses(resp Response) {
	if t.MailFrom != nil && t.MailResponse == nil {
		t.MailResponse = new(resp)
	}
	rcptResp := resp
	if t.MailResponse != nil && t.MailResponse.Err() {
		rcptResp = errMailFailed
	}
	t.fillRcptResponses(rcptResp)
	switch {
	case t.DataResponse != nil:
	case t.Body != nil && !t.rcptOk():
		t.DataResponse = new(errAllRcptsFailed)
	case t.Body != nil && t.Body.Complete():
		t.DataResponse = new(resp)
	}
}

// CheckPreconditions fills in the responses that follow from earlier failures
// (503 for recipients after a failed MAIL, and for DATA once every recipient
// has failed) and reports whether the transaction is still live: MAIL has not
// failed and DATA has no response yet.
func (t *Tx) CheckPreconditions() bool {
	live := true
	if t.MailResponse != nil && t.MailResponse.Err() {
		t.fillRcptResponses(errMailFailed)
		live = false
	}
	if t.DataResponse == nil && t.Body != nil && len(t.RcptTo) == len(t.RcptResponse) && !t.rcptOk() {
		t.DataResponse = new(errAllRcptsFailed)
		live = false
	}
	return live && t.DataResponse == nil
}

func (t *Tx) rcptOk() bool {
	for _, r := range t.RcptResponse {
		if r.Ok() {
			return true
		}
	}
	return false
}

func (t *Tx) fillRcptResponses(r Response) {
	for len(t.RcptResponse) < len(t.RcptTo) {
		t.RcptResponse = append(t.RcptResponse, r)
	}
}
