local opts = ...
return function(tx, rcpt)
  return opts.destination
end
