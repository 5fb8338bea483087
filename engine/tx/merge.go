package tx

// Delta returns what new adds to old: new scalars, the tail of each list with
// its offset, new or replaced dict entries, and the body if it grew. It fails
// with a *ConflictError if new is not old plus additions.
func Delta(old, new *Tx) (*Tx, error) {
	out := &Tx{}
	for _, f := range fields {
		if err := f.delta(f.name, old, new, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Merge applies delta d to t: scalars must be unset or equal (the body may
// grow), list items must start at the current length, dict entries are added
// or replaced. On a *ConflictError t is left unchanged.
func (t *Tx) Merge(d *Tx) error {
	m := t.Copy()
	for _, f := range fields {
		if err := f.merge(f.name, m, d); err != nil {
			return err
		}
	}
	*t = *m
	return nil
}
