package config

// StepChecker checks what this package cannot: whether a step or routing policy names a Lua
// script, and the options of those scripts (Step.Options, Policy.Options). The Lua runtime
// implements it; `koukan check` and the server run it through Router.CheckSteps after a
// load, so both report the same problems.
type StepChecker interface {
	// CheckStep returns the problems of one step, placed with Step.Pos and the positions of
	// its option Values. It sees the Go built-ins too, whose router policies are scripts.
	CheckStep(s *Step) []Problem
}

// CheckSteps runs c over every step of every chain and returns what it finds as Errors,
// sorted by position, or nil.
func (r *Router) CheckSteps(c StepChecker) error {
	var ps []Problem
	for i := range r.Endpoints {
		for j := range r.Endpoints[i].Chain {
			ps = append(ps, c.CheckStep(&r.Endpoints[i].Chain[j])...)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return Errors(sortProblems(ps))
}
