local opts = ...
local M = {}
function M.rcpt(tx, rcpt)
  if #tx.rcpt_to > opts.max then
    error("more than " .. opts.max .. " recipients")
  end
end
return M
