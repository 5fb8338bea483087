-- matchers/spf_check: matches on the result of the spf_check step (the reference's
-- SpfCheckFilter output). Every option given must hold:
--
--   mail_from_result      the result for the envelope sender: pass (or spf_pass), fail,
--                         softfail, neutral, none, temperror or permerror
--   extra_domain          one of spf_check's extra_domains ...
--   extra_domain_result   ... and the result it must have had
--
-- Before spf_check ran the answer is not known yet (nil).
local opts = ...
local NAME = "koukan.spf_check_filter.SpfCheckFilter"

local STATUSES = {
  temperror = 0, temp_error = 0, pass = 1, spf_pass = 1, permerror = 2, perm_error = 2,
  fail = 3, softfail = 4, soft_fail = 4, none = 5, neutral = 6,
}

local function status(value, option)
  local s = STATUSES[tostring(value):lower()]
  if s == nil then
    error(("spf_check matcher: %s %q is not an SPF result (pass, fail, softfail, neutral, none, temperror, permerror)")
      :format(option, tostring(value)))
  end
  return s
end

local want_mail_from = opts.mail_from_result and status(opts.mail_from_result, "mail_from_result")

local extra_domain = opts.extra_domain and opts.extra_domain:lower()
local want_extra = opts.extra_domain_result and status(opts.extra_domain_result, "extra_domain_result")
if (extra_domain == nil) ~= (want_extra == nil) then
  error("spf_check matcher: extra_domain and extra_domain_result go together")
end

return function(tx, rcpt)
  local out = tx:signal(NAME)
  if out == nil then return nil end
  if want_mail_from and out.mail_from_result ~= want_mail_from then
    return false
  end
  if extra_domain and (out.extra_domains_results or {})[extra_domain] ~= want_extra then
    return false
  end
  return true
end
