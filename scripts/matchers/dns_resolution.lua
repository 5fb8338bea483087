-- dns_resolution: matches on how the dns_resolution step rated the transaction's domains
-- (reference §6.10).
--
--   match: {matcher: koukan.mx_resolution.DnsResolutionFilter, rcpt_result: NX}
--   mode: PER_RCPT
--
-- Options, each OK, NX or TEMP, each optional; every one given must hold:
--   mail_result          the envelope sender's domain
--   rcpt_result          the recipient's domain (asked about one recipient: PER_RCPT)
--   resolution_result    the destination's hosts
-- Not known (nil) while a result it needs is not there yet.
local opts = ...
local NAME = "koukan.mx_resolution.DnsResolutionFilter"
local CODES = {OK = 0, NX = 1, TEMP = 2}

local function code(key, value)
  local c = CODES[tostring(value):upper()]
  if c == nil then
    error(string.format("dns_resolution matcher: %s must be OK, NX or TEMP, not %q", key, tostring(value)))
  end
  return c
end

local want_mail = opts.mail_result and code("mail_result", opts.mail_result)
local want_rcpt = opts.rcpt_result and code("rcpt_result", opts.rcpt_result)
local want_resolution = opts.resolution_result and code("resolution_result", opts.resolution_result)

return function(tx, rcpt)
  local sig = tx:signal(NAME)
  if sig == nil then
    return nil
  end
  local unknown = false
  -- Every test given must hold: one that fails decides, one not known yet leaves it open.
  local function test(want, got)
    if want == nil then return true end
    if got == nil or got < 0 then
      unknown = true
      return true
    end
    return got == want
  end
  local rcpt_got = nil
  if rcpt and sig.rcpt_to_result then
    rcpt_got = sig.rcpt_to_result[rcpt.index]
  end
  if not (test(want_mail, sig.mail_from_result)
      and test(want_rcpt, rcpt_got)
      and test(want_resolution, sig.resolution_result)) then
    return false
  end
  if unknown then
    return nil
  end
  return true
end
