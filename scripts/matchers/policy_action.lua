-- policy_action: did an earlier policy_action rule match? (reference §7.3)
--
-- It reads what policy_action steps record: the tags of groups that matched (MATCH or
-- REJECT) and the names of rules that fired (any action, LOG included). That makes
-- reusable allow lists:
--
--   - filter: policy_action
--     tag: trusted
--     match: {any: [{matcher: smtp_auth}, {matcher: network_address, cidr: 10.0.0.0/8}]}
--   - filter: policy_action
--     tag: relay
--     match: {not: {matcher: policy_action, tag: trusted}}
--     action: REJECT
--     message: 5.7.1 relaying denied
--
-- Options (at least one; with both, both must have been recorded):
--   tag    a group's tag
--   rule   a rule's name
--
-- Something not recorded (yet) is no match: this matcher is never "not known".
local opts = ...

local OUTPUT = "koukan.policy_action_filter.PolicyActionFilter"

local tag, rule = opts.tag, opts.rule
if tag == nil and rule == nil then
  error("policy_action matcher: set tag or rule (or both)")
end
if tag ~= nil and type(tag) ~= "string" or rule ~= nil and type(rule) ~= "string" then
  error("policy_action matcher: tag and rule must be strings")
end

local function recorded(list, value)
  for _, v in ipairs(list or {}) do
    if v == value then
      return true
    end
  end
  return false
end

return function(tx, rcpt)
  local out = tx:signal(OUTPUT) or {}
  if tag ~= nil and not recorded(out.matched_tags, tag) then
    return false
  end
  if rule ~= nil and not recorded(out.matched_rules, rule) then
    return false
  end
  return true
end
