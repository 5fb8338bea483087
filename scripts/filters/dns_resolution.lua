-- dns_resolution: turns the host names of the destination's remote_hosts into IP
-- addresses, the way mail is routed on the internet: MX records by preference, then the A
-- and AAAA records of each exchanger (reference §6.10). The gateway connects only to IPs.
--
--   - filter: dns_resolution
--     suffix: .example           # resolve host names ending with this ("" resolves all)
--     literal: mx.example.com    # and/or this one host name (without either: all names)
--     static_hosts:              # instead of DNS, replace a matching host with these
--       - {host: 10.0.0.25, port: 2525}    # or "10.0.0.25:2525"; no port: the host's
--
-- Hosts that match neither suffix nor literal, and IP addresses, pass through unchanged.
-- The result keeps each host's port, in MX preference order (IPv4 before IPv6 for each
-- exchanger), without duplicates. A domain without MX records is its own mail host
-- (implicit MX); one that does not exist or publishes a null MX (RFC 7505) is NX; a DNS
-- failure or a domain with no addresses at all is TEMP.
--
-- It also rates the envelope sender's and each recipient's domain the same way, and files
-- the signal "koukan.mx_resolution.DnsResolutionFilter":
--   {mail_from_result = r, rcpt_to_result = {r, ...}, resolution_result = r}
-- with r = 0 OK, 1 NX, 2 TEMP (a name that is not to be resolved is OK; -1 in
-- rcpt_to_result marks a recipient answered before this step, which it does not rate).
-- It rejects nothing: a policy_action rule with the dns_resolution matcher does.
local opts = ...
local NAME = "koukan.mx_resolution.DnsResolutionFilter"
local OK, NX, TEMP = 0, 1, 2

local suffix = opts.suffix and opts.suffix:lower()
local literal = opts.literal and opts.literal:lower()
if suffix == nil and literal == nil then
  suffix = ""
end
-- "host:port" as tx.destination gives it (an IPv6 host is not bracketed).
local function split(hostport)
  local host, port = hostport:match("^(.*):(%d+)$")
  return host, tonumber(port)
end

local static = nil
if opts.static_hosts then
  static = {}
  for i, h in ipairs(opts.static_hosts) do
    local host, port
    if type(h) == "string" then
      host, port = split(h)
    elseif type(h) == "table" then
      host, port = h.host, h.port
    end
    if type(host) ~= "string" or host == "" then
      error("dns_resolution: static_hosts[" .. i .. "] must be {host: ..., port: ...} or \"host:port\"")
    end
    static[#static + 1] = {host = host, port = port}
  end
end

local function is_ip(host)
  return host:find(":", 1, true) ~= nil or host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil
end

-- Whether this step resolves the name.
local function matches(name)
  local n = (name:lower():gsub("%.$", ""))
  if literal and n == literal then return true end
  if suffix == nil then return false end
  return suffix == "" or n:sub(-#suffix) == suffix
end

-- The addresses mail for name goes to, in order, or nil and NX or TEMP. With first, it
-- stops at the first address (enough to rate a domain).
local function addresses(name, first)
  local mxs, err = koukan.dns.mail_hosts(name)
  if mxs == nil then
    if err == "not found" or err == "null mx" then return nil, NX end
    return nil, TEMP
  end
  local out, seen = {}, {}
  for _, mx in ipairs(mxs) do
    for _, lookup in ipairs({koukan.dns.a, koukan.dns.aaaa}) do
      for _, ip in ipairs(lookup(mx.host) or {}) do
        if not seen[ip] then
          seen[ip] = true
          out[#out + 1] = ip
        end
      end
      if first and #out > 0 then return out end
    end
  end
  if #out == 0 then return nil, TEMP end
  return out
end

-- Rates the domain of an address: OK, NX or TEMP.
local function rate(address)
  if address == "" then return OK end -- the null path
  local a = koukan.addr.parse(address)
  if a == nil then return NX end
  if a.null or a.ascii_domain == nil or a.ascii_domain:sub(1, 1) == "[" then return OK end
  if not matches(a.ascii_domain) or static then return OK end
  local _, status = addresses(a.ascii_domain, true)
  return status or OK
end

local function needs_resolution(hosts)
  for _, hp in ipairs(hosts) do
    local host = split(hp)
    if host and not is_ip(host) and matches(host) then return true end
  end
  return false
end

-- Resolves the destination's hosts; returns the new list and the result.
local function resolve(hosts)
  local out, seen = {}, {}
  local function add(host, port)
    local key = host:lower() .. " " .. port
    if not seen[key] then
      seen[key] = true
      out[#out + 1] = {host = host, port = port}
    end
  end
  local resolved, failure = false, nil
  for _, hp in ipairs(hosts) do
    local host, port = split(hp)
    if host == nil then
      -- Not host:port: nothing to resolve, nothing to deliver to.
    elseif is_ip(host) or not matches(host) then
      add(host, port)
    elseif static then
      for _, s in ipairs(static) do add(s.host, s.port or port) end
      resolved = true
    else
      local ips, status = addresses(host)
      if ips then
        for _, ip in ipairs(ips) do add(ip, port) end
        resolved = true
      elseif failure ~= TEMP then
        failure = status
      end
    end
  end
  if resolved then return out, OK end
  return out, failure
end

-- Resolves the destination if a router step set one with names to resolve.
local function route(tx, sig)
  local dest = tx.destination
  if dest == nil or not needs_resolution(dest.remote_hosts) then return end
  local hosts, status = resolve(dest.remote_hosts)
  sig.resolution_result = status
  if #hosts > 0 then
    tx:set_destination{remote_hosts = hosts}
  else
    koukan.log.warn("dns_resolution: no host to deliver to", "result", status)
  end
end

local M = {}

function M.mail(tx)
  local sig = tx:signal(NAME) or {}
  sig.mail_from_result = rate(tx.mail_from)
  route(tx, sig)
  tx:set_signal(NAME, sig)
end

function M.rcpt(tx, rcpt)
  local sig = tx:signal(NAME) or {}
  local results = sig.rcpt_to_result or {}
  for i = #results + 1, rcpt.index - 1 do results[i] = -1 end
  results[rcpt.index] = rate(rcpt.address)
  sig.rcpt_to_result = results
  route(tx, sig)
  tx:set_signal(NAME, sig)
end

return M
