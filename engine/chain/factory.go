package chain

import (
	"errors"
	"fmt"

	"github.com/koukan/koukan/config"
)

// Factory makes the step a chain entry of the config names. Go built-ins and Lua scripts
// are both made through one: the router neither knows nor cares which a step is.
type Factory interface {
	NewStep(s *config.Step) (Step, error)
}

// ErrUnknownStep is what a Factory returns (wrapped) for a step it does not make, so that
// another can: factories are chained.
var ErrUnknownStep = errors.New("unknown chain step")

// FactoryFunc adapts a function to Factory.
type FactoryFunc func(s *config.Step) (Step, error)

func (f FactoryFunc) NewStep(s *config.Step) (Step, error) { return f(s) }

// Build makes a chain instance for one attempt from an endpoint's configured chain.
func Build(f Factory, steps []config.Step) (*Chain, error) {
	out := make([]Step, 0, len(steps))
	for i := range steps {
		s, err := f.NewStep(&steps[i])
		if err != nil {
			return nil, fmt.Errorf("%s: step %q: %w", steps[i].Pos, steps[i].Filter, err)
		}
		out = append(out, s)
	}
	return New(out...), nil
}

// Either asks each factory in turn, until one makes the step or fails with an error other
// than ErrUnknownStep: Go built-ins first, then Lua scripts.
func Either(fs ...Factory) Factory {
	return FactoryFunc(func(s *config.Step) (Step, error) {
		var err error
		for _, f := range fs {
			var step Step
			if step, err = f.NewStep(s); !errors.Is(err, ErrUnknownStep) {
				return step, err
			}
		}
		return nil, err
	})
}
