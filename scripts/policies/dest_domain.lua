-- dest_domain: routes every recipient to its own domain's mail servers, through the
-- destination (usually the gateway's REST endpoint), as the internet does (reference §6.9).
--
--   policy:
--     name: dest_domain
--     destination: {endpoint: gateway}
--     dest_port: 25               # the default
--
-- The domain is resolved to hosts later, by the dns_resolution step. A recipient whose
-- address does not parse is not this policy's.
local opts = ...
local destination = opts.destination
local port = opts.dest_port or 25

return function(tx, rcpt)
  local a = koukan.addr.parse(rcpt.address)
  if a == nil or a.null or a.ascii_domain == nil then
    return nil
  end
  return {
    endpoint = destination.endpoint,
    options = destination.options,
    remote_hosts = {{a.ascii_domain, port}},
  }
end
