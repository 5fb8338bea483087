local M = {}
function M.mail(tx)
  if tx.mail_from == "" then
    return koukan.reject(550, "5.7.1", "no"
  end
end
return M
