-- hello_matcher: the smallest matcher, a starting point for your own. It always matches.
-- A matcher returns true (match), false (no match) or nil (not known yet: it is asked again
-- at the next phase). rcpt is nil when the whole transaction is matched.
return function(tx, rcpt)
  return true
end
