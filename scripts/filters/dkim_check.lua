-- dkim_check: verifies the message's DKIM signatures (RFC 6376) and files the results,
-- for policies (matchers/dkim_check.lua), dmarc_check and auth_results, under the
-- reference's name "koukan.dkim_check_filter.DkimCheckFilter":
--
--   {from_domain = "example.com",  -- the header From domain; absent unless exactly one
--    results = {                   -- one per DKIM-Signature, top to bottom; absent if none
--      {status = 1,                -- 0 temp_err, 1 dkim_pass, 2 fail, 3 unknown_algo
--       result = "pass",           -- as RFC 8601 says it: pass, fail, neutral, temperror,
--       reason = "...",            --   permerror; reason says why when it is not pass
--       domain = "example.com",    -- d=, and s=, i=, a=
--       selector = "sel", identifier = "@example.com", algorithm = "rsa-sha256",
--       alignment = 0,             -- with from_domain: 0 domain (the same), 1 same_sld
--                                  --   (the same organizational domain), 2 other
--       timestamp = 1700000000,    -- t= and x=, when the signature has them
--       expiration = 1700086400,
--       headers = {"from", "to"},  -- h=
--       tags = {v = "1", c = "relaxed/relaxed", q = "dns/txt"}}}}  -- the other tags
--                                  --   but b= and bh=
--
-- It finds the From domain itself, so it works wherever it is in the chain. It never
-- rejects: policy_action does, on its matcher. No options.
local NAME = "koukan.dkim_check_filter.DkimCheckFilter"

-- Algorithms we verify; a signature with another one that does not pass is unknown_algo.
local KNOWN_ALGORITHMS = {["rsa-sha256"] = true, ["ed25519-sha256"] = true}

-- Tags a result has under names of its own (koukan.dkim.verify leaves out b= and bh=).
local OWN_NAME = {d = true, s = true, i = true, a = true, t = true, x = true, h = true}

-- from_domain is the domain of the header From when there is one From with one address.
local function from_domain(msg)
  local froms = msg:header_all("from")
  if #froms ~= 1 then return nil end
  local addrs = koukan.addr.parse_header(froms[1])
  if not addrs or #addrs ~= 1 or addrs[1].domain == "" then return nil end
  return addrs[1].domain:lower()
end

local function alignment(d, from)
  if not d or d == "" or not from then return 2 end
  if koukan.domain.aligned(d, from, "strict") then return 0 end
  if koukan.domain.aligned(d, from, "relaxed") then return 1 end
  return 2
end

local function status(result, algorithm)
  if result == "pass" then return 1 end
  if result == "temperror" then return 0 end
  if not KNOWN_ALGORITHMS[(algorithm or ""):lower()] then return 3 end
  return 2
end

local M = {}

function M.data(tx, msg)
  local verified, err = koukan.dkim.verify(msg)
  if not verified then
    koukan.log.warn("DKIM verification could not read the message", "err", err)
    return koukan.tempfail(451, "4.3.0", "could not check DKIM signatures, try again later")
  end
  local from = from_domain(msg)
  local results = {}
  for _, v in ipairs(verified) do
    local sig = v.Tags
    local r = {
      status = status(v.Result, v.Algorithm),
      result = v.Result,
      domain = v.Domain ~= "" and v.Domain:lower() or nil,
      selector = v.Selector ~= "" and v.Selector or nil,
      identifier = v.Identifier ~= "" and v.Identifier or nil,
      algorithm = v.Algorithm ~= "" and v.Algorithm or nil,
      alignment = alignment(v.Domain, from),
      timestamp = tonumber(sig.t or ""),
      expiration = tonumber(sig.x or ""),
      tags = {},
    }
    if v.Reason ~= "" then r.reason = v.Reason end
    if sig.h then
      r.headers = {}
      for h in sig.h:gmatch("[^:]+") do r.headers[#r.headers + 1] = h:lower() end
    end
    for name, value in pairs(sig) do
      if not OWN_NAME[name] then r.tags[name] = value end
    end
    results[#results + 1] = r
  end
  if #results == 0 then results = nil end
  tx:set_signal(NAME, {from_domain = from, results = results})
end

return M
