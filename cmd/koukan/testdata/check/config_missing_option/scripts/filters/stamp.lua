local opts = ...
local M = {}
function M.data(tx, msg)
  msg:prepend(opts.name or "X-Stamp", opts.value)
end
return M
