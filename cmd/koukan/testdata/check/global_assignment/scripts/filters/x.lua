local M = {}
counter = 0
function M.mail(tx)
  counter = counter + 1
end
return M
