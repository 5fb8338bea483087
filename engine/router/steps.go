package router

import (
	"errors"

	"github.com/koukan/koukan/config"
	"github.com/koukan/koukan/engine/chain"
	"github.com/koukan/koukan/engine/exploder"
	"github.com/koukan/koukan/engine/tx"
)

// stepsFor makes the steps of a transaction's chain with the injected factory, except those
// that it does not make because they write back to this router: the exploder (recipients'
// transactions, as the transaction's upstream sender) and add_route (copies to other
// senders' chains).
func (s *Service) stepsFor(settings *config.SenderSettings) chain.Factory {
	return chain.FactoryFunc(func(cs *config.Step) (chain.Step, error) {
		st, err := s.steps.NewStep(cs)
		switch {
		case !errors.Is(err, chain.ErrUnknownStep):
			return st, err
		case cs.AddRoute != nil:
			return s.newAddRoute(*cs.AddRoute)
		case cs.Exploder == nil:
			return st, err
		}
		return exploder.New(explodeInto{s}, exploder.Options{MSA: cs.Exploder.MSA,
			RcptTimeout: cs.Exploder.RcptTimeout, DataTimeout: cs.Exploder.DataTimeout,
			Sender: tx.Sender{Name: settings.UpstreamSender, Tag: settings.UpstreamTag}}), nil
	})
}
