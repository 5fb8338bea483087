local M = {}
function M.rpct(tx, rcpt)
end
return M
