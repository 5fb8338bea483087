-- received_header: prepends this hop's Received: trace field (RFC 5321 4.4) to the message
-- (reference §6.2).
--
--   - filter: received_header
--     received_hostname: mx.example.com   # the "by" clause; left out when not set
--     max_received_headers: 30            # more than this many is a mail loop (the default)
--
--   Received: from <helo> (<rdns> [<ip>])
--           by <received_hostname>
--           with <protocol> (<tls version> <cipher>)
--           id <transaction id>
--           for <rcpt>;
--           <date>
--
-- The client's name is the one the remote_host step verified (forward-confirmed reverse
-- DNS), if that step ran earlier; this step does no DNS itself. The protocol is SMTP,
-- ESMTP or UTF8SMTP, with S after TLS and A after AUTH (RFC 3848); X-RESTMTP for mail that
-- came in over REST. "for" is there only when the message has exactly one recipient.
local opts = ...
local by_host = opts.received_hostname or ""
local max_received = opts.max_received_headers or 30

local REMOTE_HOST = "koukan.remote_host_filter.RemoteHostFilter"

-- The client's address as an RFC 5321 address literal.
local function literal(ip)
  if ip:find(":", 1, true) then
    return "[IPv6:" .. ip .. "]"
  end
  return "[" .. ip .. "]"
end

-- The client's name if remote_host confirmed it, else nil.
local function verified_name(tx)
  local rh = tx:signal(REMOTE_HOST)
  if rh and rh.fcrdns and rh.remote_hostname and rh.remote_hostname ~= "" then
    return rh.remote_hostname
  end
  return nil
end

local function protocol(tx, meta)
  if meta == nil then
    return "X-RESTMTP"
  end
  local params = tx.mail_params or {}
  local proto = "SMTP"
  if params.SMTPUTF8 then
    proto = "UTF8SMTP"
  elseif meta.esmtp then
    proto = "ESMTP"
  end
  if meta.tls then proto = proto .. "S" end
  if meta.auth then proto = proto .. "A" end
  -- The TLS version and cipher, as RFC 8314 asks of trace fields.
  if meta.tls and (meta.tls_version or meta.tls_cipher) then
    local details = {}
    if meta.tls_version then details[#details + 1] = (tostring(meta.tls_version):gsub("%s", "")) end
    if meta.tls_cipher then details[#details + 1] = tostring(meta.tls_cipher) end
    proto = proto .. " (" .. table.concat(details, " ") .. ")"
  end
  return proto
end

local M = {}

function M.data(tx, msg)
  if #msg:header_all("Received") > max_received then
    return koukan.reject(550, "5.4.6", "message has too many Received: headers and is likely looping")
  end

  local meta = tx.smtp_meta
  local ip = tx.remote_ip
  local name = verified_name(tx)
  local clauses = {}

  if ip then
    local helo
    if meta then
      helo = meta.ehlo_host
    else
      helo = name or literal(ip)
    end
    if helo then
      local client = literal(ip)
      if name then client = name .. " " .. client end
      clauses[#clauses + 1] = "from " .. helo .. " (" .. client .. ")"
    end
  end
  if by_host ~= "" then
    clauses[#clauses + 1] = "by " .. by_host
  end
  clauses[#clauses + 1] = "with " .. protocol(tx, meta)
  if tx.id ~= "" then
    clauses[#clauses + 1] = "id " .. tx.id
  end
  local rcpts = tx.rcpt_to
  if #rcpts == 1 then
    clauses[#clauses + 1] = "for " .. rcpts[1]
  end

  -- One clause a line, as the reference writes it.
  clauses[#clauses] = clauses[#clauses] .. ";"
  clauses[#clauses + 1] = koukan.time.rfc5322()
  koukan.mime.prepend(msg, "Received", clauses)
end

return M
