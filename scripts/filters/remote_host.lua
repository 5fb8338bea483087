-- remote_host: looks up the SMTP client's name in reverse DNS and checks that the name
-- leads back to the client's address (forward-confirmed reverse DNS) (reference §6.1).
--
--   - filter: remote_host            # no options
--
-- At MAIL it files the signal "koukan.remote_host_filter.RemoteHostFilter":
--   {status = 0 OK | 1 DNS_TEMP | 2 NOT_FOUND, fcrdns = bool, ehlo_alignment = bool,
--    remote_hostname = "name"}
-- fcrdns: an A or AAAA record of the first PTR name is the client's address.
-- ehlo_alignment: fcrdns, and the client's EHLO name is that name.
-- When DNS fails temporarily MAIL gets 450 4.4.3, so the client retries. Mail without a
-- client address (REST) gets no signal. Policies decide what to do with it: the
-- remote_host matcher tests fcrdns and ehlo_alignment.
local NAME = "koukan.remote_host_filter.RemoteHostFilter"
local OK, DNS_TEMP, NOT_FOUND = 0, 1, 2

local function strip_dot(name)
  return (name:lower():gsub("%.$", ""))
end

local M = {}

function M.mail(tx)
  local ip = tx.remote_ip
  if ip == nil or ip == "" then
    return nil
  end

  local names, err = koukan.dns.ptr(ip)
  if names == nil and err ~= "not found" then
    tx:set_signal(NAME, {status = DNS_TEMP, fcrdns = false, ehlo_alignment = false})
    return koukan.tempfail(450, "4.4.3", "RemoteHostFilter ptr err: " .. err)
  end
  if names == nil or #names == 0 or names[1] == "" then
    tx:set_signal(NAME, {status = NOT_FOUND, fcrdns = false, ehlo_alignment = false, remote_hostname = ""})
    return nil
  end
  local name = names[1]

  -- Forward lookups of the name: one of its addresses must be the client's.
  local client = ip:lower()
  local fcrdns, failures = false, 0
  for _, lookup in ipairs({koukan.dns.a, koukan.dns.aaaa}) do
    local addrs, why = lookup(name)
    if addrs == nil then
      if why ~= "not found" then failures = failures + 1 end
    else
      for _, a in ipairs(addrs) do
        if a:lower() == client then fcrdns = true end
      end
    end
  end
  if failures == 2 then
    tx:set_signal(NAME, {status = DNS_TEMP, fcrdns = false, ehlo_alignment = false, remote_hostname = name})
    return koukan.tempfail(450, "4.4.3", "RemoteHostFilter fwd err")
  end

  local meta = tx.smtp_meta
  local ehlo = meta and meta.ehlo_host
  local aligned = fcrdns and type(ehlo) == "string" and strip_dot(ehlo) == strip_dot(name)
  tx:set_signal(NAME, {status = OK, fcrdns = fcrdns, ehlo_alignment = aligned, remote_hostname = name})
  return nil
end

return M
