-- remote_host: matches on what the remote_host step found out about the SMTP client
-- (reference §6.1).
--
--   match: {matcher: koukan.remote_host_filter.RemoteHostFilter, fcrdns: false}
--
-- Options, each optional; every one given must hold:
--   fcrdns: bool           the client's reverse DNS name leads back to its address
--   ehlo_alignment: bool   ... and the client said that name in EHLO
-- Not known (nil) before the remote_host step ran, e.g. for mail that came over REST.
local opts = ...
local NAME = "koukan.remote_host_filter.RemoteHostFilter"

return function(tx)
  local sig = tx:signal(NAME)
  if sig == nil then
    return nil
  end
  if opts.fcrdns ~= nil and (sig.fcrdns == true) ~= opts.fcrdns then
    return false
  end
  if opts.ehlo_alignment ~= nil and (sig.ehlo_alignment == true) ~= opts.ehlo_alignment then
    return false
  end
  return true
end
