package luabind

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/koukan/koukan/engine/tx"
	lua "github.com/yuin/gopher-lua"
)

// state is one Lua VM of a pool. It runs one call at a time.
type state struct {
	L   *lua.LState
	env *lua.LTable
	// entries are what each configured step's chunk returned on this state (its hooks or
	// its function), made on first use: a script's top level runs once per state.
	entries map[*instance]lua.LValue
	// matchers are the matcher functions koukan.matcher.new made, likewise.
	matchers map[matcherKey]*lua.LFunction
	uses     int
	// gen is the version whose instances entries holds.
	gen int64
	// call is what the running call is about, for the log and the bindings.
	call *call
	meta metatables
}

// pool is a bounded set of states for one Library: states are built from its compiled
// prototypes, so a pool dies with its version.
type pool struct {
	rt      *Runtime
	free    chan *state
	slots   chan struct{} // one per live state
	maxUses int
}

func newPool(rt *Runtime, size, maxUses int) *pool {
	return &pool{rt: rt, free: make(chan *state, size), slots: make(chan struct{}, size), maxUses: maxUses}
}

// get returns an idle state, a new one while there is room, or waits for one.
func (p *pool) get(ctx context.Context) (*state, error) {
	select {
	case s := <-p.free:
		return s, nil
	default:
	}
	select {
	case s := <-p.free:
		return s, nil
	case p.slots <- struct{}{}:
		return p.rt.newState(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a Lua state: %w", ctx.Err())
	}
}

// put returns s after a call; a state past its uses is retired.
func (p *pool) put(s *state) {
	s.call = nil
	s.L.SetTop(0)
	if s.uses++; s.uses >= p.maxUses {
		p.retire(s)
		return
	}
	select {
	case p.free <- s:
	default:
		p.retire(s)
	}
}

func (p *pool) retire(s *state) {
	s.L.Close()
	<-p.slots
}

// close retires the idle states; busy ones are retired when they come back, as the pool
// is full then.
func (p *pool) close() {
	for {
		select {
		case s := <-p.free:
			s.L.Close()
		default:
			return
		}
	}
}

// ScriptError is a script that failed: a Lua error, a timeout or a misuse of the API. It
// carries script:line for the log; clients only ever see a 451 4.3.0.
type ScriptError struct {
	Script  string
	Message string // with script:line where Lua knows it
	Timeout bool
	// Setup is set when the script's top level failed, as it does when it checks its
	// options, rather than a hook.
	Setup bool
}

func (e *ScriptError) Error() string {
	if e.Timeout {
		return fmt.Sprintf("%s: timed out: %s", e.Script, e.Message)
	}
	return e.Message
}

// TempFail is the response a failing script gives its transaction.
var TempFail = tx.Response{Code: 451, Message: "4.3.0 temporary failure in a policy script"}

// invoke calls fn with args on s and returns its first result. A script that raises a
// koukan response (error(koukan.reject(...))) returns it as the result: raising is a way
// out of nested code.
func (s *state) invoke(ctx context.Context, script string, fn lua.LValue, args ...lua.LValue) (lua.LValue, error) {
	s.L.Push(fn)
	for _, a := range args {
		s.L.Push(a)
	}
	err := s.L.PCall(len(args), 1, nil)
	if err == nil {
		ret := s.L.Get(-1)
		s.L.Pop(1)
		return ret, nil
	}
	var apiErr *lua.ApiError
	if errors.As(err, &apiErr) {
		if _, ok := toResponse(apiErr.Object); ok {
			return apiErr.Object, nil
		}
	}
	if ctx.Err() != nil {
		return nil, &ScriptError{Script: script, Message: ctx.Err().Error(), Timeout: true}
	}
	msg := err.Error()
	if apiErr != nil && apiErr.Object != nil {
		msg = apiErr.Object.String()
	}
	// gopher-lua appends a traceback; its first line is what the log needs.
	msg, _, _ = strings.Cut(msg, "\nstack traceback:")
	return nil, &ScriptError{Script: script, Message: msg}
}
