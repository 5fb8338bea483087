-- spf_check: checks SPF (RFC 7208) for the client and the envelope sender once MAIL FROM
-- is known, and files the result, for policies (matchers/spf_check.lua), dmarc_check and
-- auth_results, under the reference's name "koukan.spf_check_filter.SpfCheckFilter":
--
--   {mail_from_result = 1,       -- 0 temperror, 1 pass, 2 permerror, 3 fail, 4 softfail,
--                                --   5 none, 6 neutral
--    result = "pass",            -- the same as RFC 8601 says it
--    domain = "example.com",     -- the domain checked: MAIL FROM's, or the HELO name's
--    identity = "mailfrom",      --   for the null sender, then "helo"
--    helo = "mx.example.com",    -- the HELO name, if the client gave one
--    explanation = "...",        -- how the result came about, for logs
--    extra_domains_results = {["example.org"] = 1}}  -- see extra_domains
--
-- Mail that did not come in over SMTP (injected over REST: no client address, no HELO)
-- gets "none". It never rejects: policy_action does, on its matcher.
--
-- Options:
--   extra_domains   domains to check the client against as well, as if it sent for
--                   postmaster@<domain>: is this client allowed to send for them?
local opts = ...
local NAME = "koukan.spf_check_filter.SpfCheckFilter"

local STATUS = {temperror = 0, pass = 1, permerror = 2, fail = 3, softfail = 4, none = 5, neutral = 6}

local extra_domains = {}
for _, d in ipairs(opts.extra_domains or {}) do
  if type(d) ~= "string" or d == "" then error("spf_check: extra_domains must be a list of domains") end
  extra_domains[#extra_domains + 1] = d
end

local M = {}

function M.mail(tx)
  local ip = tx.remote_ip  -- nil for mail injected over REST
  local meta = tx.smtp_meta
  local helo = meta and meta.ehlo_host or ""
  local mail_from = tx.mail_from or ""
  local res = koukan.spf.check(ip, helo, mail_from)
  local out = {
    mail_from_result = STATUS[res.Result],
    result = res.Result,
    domain = res.Domain ~= "" and res.Domain or nil,
    identity = (mail_from == "" or mail_from == "<>") and "helo" or "mailfrom",
    helo = helo ~= "" and helo or nil,
    explanation = res.Explanation ~= "" and res.Explanation or nil,
    extra_domains_results = {},
  }
  for _, d in ipairs(extra_domains) do
    out.extra_domains_results[d:lower()] = STATUS[koukan.spf.check(ip, helo, "postmaster@" .. d).Result]
  end
  tx:set_signal(NAME, out)
end

return M
