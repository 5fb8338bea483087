-- matchers/dmarc_check: matches on the verdict of the dmarc_check step. Every option given
-- must hold:
--
--   result        pass, fail, none, temperror or permerror, or a list of them
--   policy        none, quarantine or reject, or a list of them: the From domain's policy
--   aligned_spf   true or false
--   aligned_dkim  true or false
--
-- For example {result: fail, policy: [quarantine, reject]} matches what DMARC asks to
-- keep out of the inbox. Before dmarc_check ran the answer is not known yet (nil).
local opts = ...
local NAME = "koukan.dmarc_check"

local RESULTS = {pass = true, fail = true, none = true, temperror = true, permerror = true}
local POLICIES = {none = true, quarantine = true, reject = true}

-- set_of turns a word or a list of words into a set, checking each.
local function set_of(value, known, option)
  local list = type(value) == "table" and value or {value}
  local set = {}
  for _, w in ipairs(list) do
    w = tostring(w):lower()
    if not known[w] then error(("dmarc_check matcher: %s %q is not a DMARC %s"):format(option, w, option)) end
    set[w] = true
  end
  return set
end

local function flag(value, option)
  if type(value) ~= "boolean" then error(("dmarc_check matcher: %s must be true or false"):format(option)) end
  return value
end

local results = opts.result and set_of(opts.result, RESULTS, "result")
local policies = opts.policy and set_of(opts.policy, POLICIES, "policy")
local aligned_spf, aligned_dkim
if opts.aligned_spf ~= nil then aligned_spf = flag(opts.aligned_spf, "aligned_spf") end
if opts.aligned_dkim ~= nil then aligned_dkim = flag(opts.aligned_dkim, "aligned_dkim") end

return function(tx, rcpt)
  local v = tx:signal(NAME)
  if v == nil then return nil end
  if results and not results[v.result] then return false end
  if policies and not policies[v.policy or ""] then return false end
  if aligned_spf ~= nil and (v.aligned_spf == true) ~= aligned_spf then return false end
  if aligned_dkim ~= nil and (v.aligned_dkim == true) ~= aligned_dkim then return false end
  return true
end
