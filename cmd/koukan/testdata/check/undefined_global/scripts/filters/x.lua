local M = {}
function M.mail(tx)
  local domain = strng.lower(tx.mail_from)
  return domain
end
return M
