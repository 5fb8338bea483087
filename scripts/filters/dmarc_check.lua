-- dmarc_check: evaluates DMARC (RFC 7489) for the header From domain once the message is
-- complete, and files the verdict under "koukan.dmarc_check":
--
--   {result = "fail",            -- pass, fail, none (no policy), temperror or permerror
--    policy = "reject",          -- the domain's policy: none, quarantine or reject
--                                --   (absent when it could not be looked up)
--    domain = "example.com",     -- the From domain
--    policy_domain = "...",      -- where the policy was found: that domain or, failing
--                                --   that, its organizational domain (then sp= applies)
--    pct = 100,                  -- the record's pct=
--    aligned_spf = false,        -- SPF passed for a domain aligned with it (aspf=)
--    aligned_dkim = false,       -- a DKIM signature of an aligned domain passed (adkim=)
--    reason = "..."}             -- why, when there is no policy
--
-- It takes the SPF and DKIM results from the spf_check and dkim_check steps when they ran
-- earlier in the chain, and checks what is missing itself. A From with several addresses
-- is checked for each domain, and the worst verdict kept (RFC 7489 §6.6.1).
--
-- Options:
--   enforce   (default false) apply the policy: a failing message whose domain says
--             p=reject is rejected (550 5.7.1), subject to pct=; a temperror is a
--             temporary failure (451 4.4.3) unless the domain's policy is known to be
--             none or quarantine. Otherwise it only reports: policy_action can act on the
--             verdict with the dmarc_check matcher.
local opts = ...
local NAME = "koukan.dmarc_check"
local SPF = "koukan.spf_check_filter.SpfCheckFilter"
local DKIM = "koukan.dkim_check_filter.DkimCheckFilter"

local enforce = opts.enforce or false
if type(enforce) ~= "boolean" then error("dmarc_check: enforce must be true or false") end

-- The reference's numbers for results that signals give without their RFC 8601 word.
local SPF_WORDS = {[0] = "temperror", "pass", "permerror", "fail", "softfail", "none", "neutral"}
local DKIM_WORDS = {[0] = "temperror", "pass", "fail", "fail"}

-- Which verdict wins when a From has several domains.
local RANK = {none = 1, pass = 2, permerror = 3, temperror = 4, fail = 5}
local STRICTNESS = {none = 1, quarantine = 2, reject = 3}

-- spf_result is {result, domain} for the SPF-authenticated identity: MAIL FROM, or HELO
-- for the null sender.
local function spf_result(tx)
  local s = tx:signal(SPF)
  if s then
    local domain = s.domain
    if domain == nil and tx.mail_from and tx.mail_from ~= "" then
      domain = tx.mail_from:match("@([^@>]+)>?$")
    end
    return {result = s.result or SPF_WORDS[s.mail_from_result] or "none", domain = domain}
  end
  local meta = tx.smtp_meta
  local res = koukan.spf.check(tx.remote_ip, meta and meta.ehlo_host or "", tx.mail_from or "")
  return {result = res.Result, domain = res.Domain ~= "" and res.Domain or nil}
end

-- dkim_results lists {result, domain} per signature, or returns nil and why.
local function dkim_results(tx, msg)
  local s = tx:signal(DKIM)
  local out = {}
  if s then
    for _, r in ipairs(s.results or {}) do
      out[#out + 1] = {result = r.result or DKIM_WORDS[r.status] or "fail", domain = r.domain}
    end
    return out
  end
  local verified, err = koukan.dkim.verify(msg)
  if not verified then return nil, err end
  for _, v in ipairs(verified) do
    out[#out + 1] = {result = v.Result, domain = v.Domain ~= "" and v.Domain or nil}
  end
  return out
end

-- author_domains are the distinct domains of the From field(s).
local function author_domains(msg)
  local domains, seen = {}, {}
  for _, from in ipairs(msg:header_all("from")) do
    for _, a in ipairs(koukan.addr.parse_header(from) or {}) do
      local d = a.domain:lower()
      if d ~= "" and not seen[d] then
        seen[d] = true
        domains[#domains + 1] = d
      end
    end
  end
  return domains
end

local function aligned(a, b, mode)
  return a ~= nil and (koukan.domain.aligned(a, b, mode)) or false
end

-- evaluate is the verdict for one author domain.
local function evaluate(domain, spf, dkim)
  local v = {domain = domain, aligned_spf = false, aligned_dkim = false}
  local policy, result, why = koukan.dmarc.lookup(domain)
  if not policy then
    v.result, v.reason = result, why
    if result ~= "temperror" then v.policy = "none" end
    return v
  end
  v.domain, v.policy, v.policy_domain, v.pct = policy.author_domain, policy.policy, policy.domain, policy.pct
  v.aligned_spf = spf.result == "pass" and aligned(spf.domain, domain, policy.aspf)
  local dkim_temperror = false
  for _, r in ipairs(dkim) do
    if aligned(r.domain, domain, policy.adkim) then
      v.aligned_dkim = v.aligned_dkim or r.result == "pass"
      dkim_temperror = dkim_temperror or r.result == "temperror"
    end
  end
  if v.aligned_spf or v.aligned_dkim then
    v.result = "pass"
  elseif dkim_temperror or spf.result == "temperror" and aligned(spf.domain, domain, policy.aspf) then
    -- What failed to check might have passed.
    v.result = "temperror"
  else
    v.result = "fail"
  end
  return v
end

local function worse(a, b)
  if RANK[a.result] ~= RANK[b.result] then return RANK[a.result] > RANK[b.result] end
  return (STRICTNESS[a.policy] or 0) > (STRICTNESS[b.policy] or 0)
end

local M = {}

function M.data(tx, msg)
  local domains = author_domains(msg)
  if #domains == 0 then
    tx:set_signal(NAME, {result = "none", policy = "none", aligned_spf = false, aligned_dkim = false,
      reason = "no From address to check"})
    return
  end
  local dkim, err = dkim_results(tx, msg)
  if not dkim then
    koukan.log.warn("DMARC: DKIM verification could not read the message", "err", err)
    return koukan.tempfail(451, "4.3.0", "could not check DMARC, try again later")
  end
  local spf = spf_result(tx)
  local verdict
  for _, d in ipairs(domains) do
    local v = evaluate(d, spf, dkim)
    if verdict == nil or worse(v, verdict) then verdict = v end
  end
  tx:set_signal(NAME, verdict)

  if not enforce then return end
  if verdict.result == "fail" and verdict.policy == "reject" and math.random(100) <= (verdict.pct or 100) then
    return koukan.reject(550, "5.7.1", "message rejected by the DMARC policy of " .. verdict.domain)
  end
  if verdict.result == "temperror" and verdict.policy ~= "none" and verdict.policy ~= "quarantine" then
    return koukan.tempfail(451, "4.4.3", "DMARC check failed temporarily for " .. verdict.domain .. ", try again later")
  end
end

return M
