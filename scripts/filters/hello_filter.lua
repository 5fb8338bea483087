-- hello_filter: the smallest filter, a starting point for your own. It logs each phase of
-- the transaction and lets it through. Copy it into your scripts directory under a new
-- name, then refer to it from a chain:
--
--   - filter: my_filter
--     greeting: hi          # an option; read below as opts.greeting
local opts = ...
local greeting = opts.greeting or "hello"

local M = {}

function M.mail(tx)
  koukan.log.info(greeting, "mail_from", tx.mail_from, "remote_ip", tx.remote_ip)
end

function M.rcpt(tx, rcpt)
  koukan.log.info(greeting, "rcpt", rcpt.address)
end

function M.data(tx, msg)
  koukan.log.info(greeting, "size", msg:size(), "subject", msg:header("subject"))
end

return M
