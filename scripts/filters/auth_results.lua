-- auth_results: records what the spf_check, dkim_check and dmarc_check steps found in an
-- Authentication-Results header field (RFC 8601) on top of the message, e.g.
--
--   Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=example.com;
--     dkim=pass header.d=example.com header.s=sel header.a=rsa-sha256;
--     dmarc=pass (p=reject) header.from=example.com
--
-- Put it after those steps. A method whose step did not run is left out ("none" if
-- none ran). Fields already in the message that claim our authserv-id are forgeries
-- (RFC 8601 §5) and are deleted; those of other authserv-ids are kept.
--
-- Options:
--   authserv_id   (required) the name of this administrative domain's authentication
--                 service, usually the host name of the border MTA
local opts = ...
local SPF = "koukan.spf_check_filter.SpfCheckFilter"
local DKIM = "koukan.dkim_check_filter.DkimCheckFilter"
local DMARC = "koukan.dmarc_check"
local FIELD = "Authentication-Results"

local authserv_id = opts.authserv_id
if type(authserv_id) ~= "string" or not authserv_id:match("^[%w][%w%.%-_]*$") then
  error("auth_results: authserv_id must be a host name, such as mx.example.net")
end
local our_id = authserv_id:lower()

-- The reference's numbers for results that signals give without their RFC 8601 word.
local SPF_WORDS = {[0] = "temperror", "pass", "permerror", "fail", "softfail", "none", "neutral"}
local DKIM_WORDS = {[0] = "temperror", "pass", "fail", "fail"}

-- id_of is the authserv-id an Authentication-Results value starts with, lower-cased:
-- after any white space and comments, a token or a quoted string.
local function id_of(value)
  local v, before = value, nil
  while v ~= before do
    before = v
    v = v:gsub("^%s+", ""):gsub("^%b()", "")
  end
  local id = v:match('^"([^"]*)"') or v:match("^([^%s;()]+)")
  return id and id:lower()
end

-- quote makes a reason= value: a quoted string without quotes, backslashes or control
-- characters, kept short.
local function quote(s)
  s = s:gsub("[%c\"\\]", " "):gsub("%s+", " "):match("^ ?(.-) ?$")
  if #s > 100 then s = s:sub(1, 97) .. "..." end
  return '"' .. s .. '"'
end

-- A property value: a domain or a token; anything else is left out.
local function prop(name, value)
  if type(value) ~= "string" or not value:match("^[%w%.%-_@]+$") then return nil end
  return name .. "=" .. value
end

-- method formats "name=result [reason] [properties]".
local function method(name, result, reason, ...)
  local words = {name .. "=" .. result}
  if reason then words[#words + 1] = "reason=" .. quote(reason) end
  for i = 1, select("#", ...) do
    local p = select(i, ...)
    if p then words[#words + 1] = p end
  end
  return table.concat(words, " ")
end

local function spf_part(s)
  local result = s.result or SPF_WORDS[s.mail_from_result] or "none"
  if s.identity == "helo" then
    return method("spf", result, nil, prop("smtp.helo", s.domain or s.helo))
  end
  return method("spf", result, nil, prop("smtp.mailfrom", s.domain))
end

local function dkim_parts(d, parts)
  local results = d.results or {}
  if #results == 0 then
    parts[#parts + 1] = "dkim=none"
  end
  for _, r in ipairs(results) do
    local result = r.result or DKIM_WORDS[r.status] or "fail"
    parts[#parts + 1] = method("dkim", result, result ~= "pass" and r.reason or nil,
      prop("header.d", r.domain), prop("header.s", r.selector), prop("header.a", r.algorithm))
  end
end

local function dmarc_part(v)
  local words = {"dmarc=" .. v.result}
  if v.policy then words[#words + 1] = "(p=" .. v.policy .. ")" end
  words[#words + 1] = prop("header.from", v.domain)
  return table.concat(words, " ")
end

local M = {}

function M.data(tx, msg)
  -- Delete forged fields, bottom up so that the counts of those above stay right.
  local values = msg:header_all(FIELD)
  for n = #values, 1, -1 do
    if id_of(values[n]) == our_id then msg:delete(FIELD, n) end
  end

  local parts = {}
  local spf = tx:signal(SPF)
  if spf then parts[#parts + 1] = spf_part(spf) end
  local dkim = tx:signal(DKIM)
  if dkim then dkim_parts(dkim, parts) end
  local dmarc = tx:signal(DMARC)
  if dmarc and dmarc.result then parts[#parts + 1] = dmarc_part(dmarc) end
  if #parts == 0 then parts[1] = "none" end
  msg:prepend(FIELD, authserv_id .. "; " .. table.concat(parts, "; "))
end

return M
