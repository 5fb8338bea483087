-- network_address: does the SMTP client connect from a network of ours? (reference §7.4)
--
--   - filter: policy_action
--     tag: relay
--     name: internal_hosts
--     match: {matcher: network_address, cidr: 10.0.0.0/8}
--     action: MATCH
--
-- Options:
--   cidr   a network ("192.0.2.0/24", "2001:db8::/32") or one address, or a list of them:
--          the client matches if it is in any. IPv4 clients that reach us over IPv6
--          (::ffff:192.0.2.1) count as IPv4.
--
-- Not known (nil) when the transaction has no client address: mail posted over REST.
local opts = ...

local cidrs = opts.cidr
if type(cidrs) == "string" then
  cidrs = {cidrs}
end
if type(cidrs) ~= "table" or #cidrs == 0 then
  error("network_address: cidr must be a network such as 192.0.2.0/24, or a list of them")
end
local networks = {}
for i, c in ipairs(cidrs) do
  local net, why = koukan.net.parse_cidr(tostring(c))
  if not net then
    error("network_address: cidr[" .. i .. "]: " .. why)
  end
  networks[#networks + 1] = net
end

return function(tx, rcpt)
  local ip = tx.remote_ip
  if ip == nil then
    return nil
  end
  for _, net in ipairs(networks) do
    if koukan.net.cidr_contains(net, ip) then
      return true
    end
  end
  return false
end
