-- dkim_sign: signs the message with DKIM (RFC 6376) on its way upstream, prepending one
-- DKIM-Signature per key.
--
-- Options:
--   key, domain, selector  one key: a PEM private key file, RSA (rsa-sha256) or Ed25519
--                          (ed25519-sha256) as the file says, and the d= and s= it signs for
--   keys                   several keys at once, e.g. an RSA and an Ed25519 key, or the
--                          keys of several domains: a list of {domain, selector, key};
--                          with or instead of the single key above
--   headers                the header fields to sign; default: those of the usual list
--                          the message has, and From once more, so that a From added
--                          later breaks the signature
--   expiration             seconds the signature stays valid (x=); default: no expiry
--   canonicalization       c=, e.g. "relaxed/simple"; default "relaxed/relaxed"
--
-- Key files are read again when they change, so keys rotate without a reload. A step
-- without any key is a configuration error (koukan check reports it). A message that
-- cannot be signed fails temporarily (451 4.3.0): it is retried, never sent unsigned.
local opts = ...

local CANONICALIZATIONS = {
  relaxed = true, simple = true,
  ["relaxed/relaxed"] = true, ["relaxed/simple"] = true,
  ["simple/relaxed"] = true, ["simple/simple"] = true,
}

-- check_key validates one {domain, selector, key} and returns a copy of it.
local function check_key(k, where)
  if type(k) ~= "table" then
    error(("dkim_sign: %s must be a table {domain, selector, key}"):format(where), 2)
  end
  for _, field in ipairs({"domain", "selector", "key"}) do
    if type(k[field]) ~= "string" or k[field] == "" then
      error(("dkim_sign: %s needs %s"):format(where, field), 2)
    end
  end
  for field in pairs(k) do
    if field ~= "domain" and field ~= "selector" and field ~= "key" then
      error(("dkim_sign: %s has %s; a key has only domain, selector and key"):format(where, tostring(field)), 2)
    end
  end
  return {domain = k.domain, selector = k.selector, key = k.key}
end

local keys = {}
-- The single form. "or nil" tells koukan check these are optional: a step may use keys
-- instead; the check below still refuses one set without the others.
local single = {domain = opts.domain or nil, selector = opts.selector or nil, key = opts.key or nil}
if single.domain or single.selector or single.key then
  keys[#keys + 1] = check_key(single, "the key option")
end
for i, k in ipairs(opts.keys or {}) do
  keys[#keys + 1] = check_key(k, ("keys[%d]"):format(i))
end
if #keys == 0 then
  error("dkim_sign: no key to sign with: set key, domain and selector, or keys")
end

-- What applies to every key.
local defaults = {}
if opts.headers then
  local has_from = false
  for _, h in ipairs(opts.headers) do
    has_from = has_from or h:lower() == "from"
  end
  if not has_from then error("dkim_sign: headers must include From") end
  defaults.headers = opts.headers
end
if opts.expiration then
  if type(opts.expiration) ~= "number" or opts.expiration <= 0 then
    error("dkim_sign: expiration must be a positive number of seconds")
  end
  defaults.expiration = opts.expiration
end
if opts.canonicalization then
  if not CANONICALIZATIONS[opts.canonicalization] then
    error("dkim_sign: canonicalization must be relaxed or simple for the header and the body, as in \"relaxed/simple\"")
  end
  defaults.canonicalization = opts.canonicalization
end

local sign = koukan.dkim.sign

local M = {}

function M.data(tx, msg)
  local ok, err = sign(msg, keys, defaults)
  if not ok then
    koukan.log.error("DKIM signing failed", "err", err)
    return koukan.tempfail(451, "4.3.0", "DKIM signing failed, try again later")
  end
end

return M
