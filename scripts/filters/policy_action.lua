-- policy_action: one rule of a policy: when its match expression matches, it rejects, logs
-- or just records the match (reference §7).
--
--   - filter: policy_action
--     tag: relay                  # the group: rules with one tag decide together
--     name: allow_authenticated   # the rule (default: the tag)
--     match: {matcher: smtp_auth}
--     action: MATCH               # the group is decided: its later rules are skipped
--   - filter: policy_action
--     tag: relay
--     name: deny_relay
--     action: REJECT              # no match: matches whatever reaches it
--     code: 550
--     message: 5.7.1 relaying denied
--
-- Options:
--   tag      required: the group the rule belongs to
--   name     the rule's name (default: the tag)
--   match    what to look for (default: everything). An expression is one of
--              {matcher: <name>, ...its options}   matchers/<name>.lua
--              {not: <expression>}
--              {any: [<expression>, ...]}          the first that matches
--              {all: [<expression>, ...]}          every one
--            A matcher answers true, false, or nil for "not known yet" (say, the message is
--            not here yet). not keeps nil; any and all stop at the first answer that
--            decides or is not known, left to right.
--   mode     PER_RCPT: judge each new recipient on its own; by default the rule judges the
--            whole transaction
--   action   MATCH (default), REJECT, LOG, or a weighted draw such as [[9, LOG], [1, REJECT]]
--            (1 time in 10 the rule rejects: roll a policy out gradually)
--   code     the reply code of REJECT (default 550; 4xx is a temporary failure)
--   message  its text (default "5.6.0 message rejected <name>"); without an enhanced status
--            code in front, x.7.1 of the code's class is put there
--
-- The whole transaction is judged at each SMTP stage: after MAIL, after each batch of RCPTs
-- and once the message is complete. At each stage:
--   * a rule is skipped once its group is decided (a MATCH or REJECT of the tag) or once the
--     rule itself fired (any action, LOG included);
--   * "not known" skips the rest of the group for this stage; the rule is asked again at the
--     next stage;
--   * REJECT answers everything the stage asks: MAIL, the stage's recipients, or the data;
--     LOG logs and lets the group's later rules run; MATCH decides the group.
-- With mode: PER_RCPT every new recipient is judged on its own (with matchers that look at
-- one recipient, such as num_rcpts or invalid_rcpt_to); REJECT answers that recipient, and
-- nothing is skipped.
--
-- What matched is filed as the signal koukan.policy_action_filter.PolicyActionFilter =
-- {matched_tags = [...], matched_rules = [...]}, shared by every policy_action step, which
-- the matcher policy_action reads: {matcher: policy_action, tag: relay}. The steps note the
-- groups not known in the current stage in the signal koukan.policy_action_filter.unmet.
local opts = ...

local OUTPUT = "koukan.policy_action_filter.PolicyActionFilter"
-- Which groups are "not known" in the current stage: {stage = <key>, tags = [...]}.
local UNMET = "koukan.policy_action_filter.unmet"

-- The reference names the matchers of its filters' outputs by class; ours are scripts.
local OUTPUT_MATCHERS = {
  ["koukan.remote_host_filter.RemoteHostFilter"] = "remote_host",
  ["koukan.dkim_check_filter.DkimCheckFilter"] = "dkim_check",
  ["koukan.spf_check_filter.SpfCheckFilter"] = "spf_check",
  ["koukan.mx_resolution.DnsResolutionFilter"] = "dns_resolution",
  ["koukan.message_validation_filter.MessageValidationFilter"] = "message_validation",
  ["koukan.policy_action_filter.PolicyActionFilter"] = "policy_action",
}

local tag = opts.tag
if type(tag) ~= "string" or tag == "" then
  error("policy_action: tag (the rule's group) must be a name")
end
local name = opts.name or tag
if type(name) ~= "string" or name == "" then
  error("policy_action " .. tag .. ": name must be a string")
end
local rule = "policy_action " .. name

local mode = opts.mode or "WHOLE_TX"
if mode ~= "PER_RCPT" and mode ~= "WHOLE_TX" then
  error(rule .. ": mode must be PER_RCPT or left out, not " .. tostring(mode))
end

-- The match expression, compiled into a function (tx, rcpt) -> true, false or nil.

local compile

local function keys_of(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n
end

local function suggest(matcher)
  local class = matcher:match("%.([%w_]+)$")
  for full, script in pairs(OUTPUT_MATCHERS) do
    if class ~= nil and full:match("%.([%w_]+)$") == class then
      return " (did you mean " .. full .. ", or " .. script .. "?)"
    end
  end
  return ""
end

local function leaf(e, where)
  local matcher = e.matcher
  if type(matcher) ~= "string" then
    error(rule .. ": " .. where .. ": matcher must be a name")
  end
  local fn, why = koukan.matcher.new(OUTPUT_MATCHERS[matcher] or matcher, e)
  if fn == nil then
    error(rule .. ": " .. where .. ": unknown matcher " .. matcher .. ": " .. tostring(why) .. suggest(matcher))
  end
  return function(tx, rcpt)
    local r = fn(tx, rcpt)
    if r ~= true and r ~= false and r ~= nil then
      error("matcher " .. matcher .. " returned a " .. type(r) .. "; a matcher returns true, false or nil")
    end
    return r
  end
end

local function list(e, key, where)
  local items = e[key]
  if type(items) ~= "table" or keys_of(items) ~= #items then
    error(rule .. ": " .. where .. ": " .. key .. " must be a list of expressions")
  end
  local fns = {}
  for i, item in ipairs(items) do
    fns[i] = compile(item, where .. "." .. key .. "[" .. i .. "]")
  end
  return fns
end

compile = function(e, where)
  if type(e) ~= "table" then
    error(rule .. ": " .. where .. ": an expression is a table: {matcher: ...}, {not: ...}, {any: [...]} or {all: [...]}")
  end
  if e.matcher ~= nil then
    return leaf(e, where)
  end
  if keys_of(e) ~= 1 then
    error(rule .. ": " .. where .. ": an expression has one of the keys matcher, not, any, all")
  end
  if e["not"] ~= nil then
    local inner = compile(e["not"], where .. ".not")
    return function(tx, rcpt)
      local r = inner(tx, rcpt)
      if r == nil then
        return nil
      end
      return not r
    end
  elseif e.any ~= nil then
    local fns = list(e, "any", where)
    return function(tx, rcpt)
      for _, fn in ipairs(fns) do
        local r = fn(tx, rcpt)
        if r ~= false then
          return r
        end
      end
      return false
    end
  elseif e.all ~= nil then
    local fns = list(e, "all", where)
    return function(tx, rcpt)
      for _, fn in ipairs(fns) do
        local r = fn(tx, rcpt)
        if r ~= true then
          return r
        end
      end
      return true
    end
  end
  error(rule .. ": " .. where .. ": an expression has one of the keys matcher, not, any, all")
end

local match = function()
  return true
end
if opts.match ~= nil then
  local expr = opts.match
  -- match: {} is no condition, as is no match at all.
  if type(expr) ~= "table" or next(expr) ~= nil then
    match = compile(expr, "match")
  end
end

-- The action, or the weighted choice of one.

local ACTIONS = {MATCH = true, REJECT = true, LOG = true}
local choices, total = {}, 0
local action = opts.action or "MATCH"
if type(action) == "string" then
  choices[1] = {weight = 1, action = action}
elseif type(action) == "table" then
  for i, pair in ipairs(action) do
    if type(pair) ~= "table" or type(pair[1]) ~= "number" or pair[1] < 0 or type(pair[2]) ~= "string" then
      error(rule .. ": action[" .. i .. "] must be [weight, ACTION] with a weight of 0 or more")
    end
    choices[i] = {weight = pair[1], action = pair[2]}
  end
else
  error(rule .. ": action must be MATCH, REJECT, LOG or a list of [weight, ACTION]")
end
for i, c in ipairs(choices) do
  if not ACTIONS[c.action] then
    error(rule .. ": action " .. tostring(c.action) .. " is not MATCH, REJECT or LOG" .. (#choices > 1 and " (action[" .. i .. "])" or ""))
  end
  total = total + c.weight
end
if total <= 0 then
  error(rule .. ": the weights of action add up to nothing")
end

local function draw()
  if #choices == 1 then
    return choices[1].action
  end
  local r = math.random() * total
  local last
  for _, c in ipairs(choices) do
    if c.weight > 0 then
      last = c.action
      r = r - c.weight
      if r < 0 then
        return last
      end
    end
  end
  return last
end

-- The response of REJECT, made once so that a bad code fails the configuration.

local raw_code = opts.code or 550
local code = tonumber(raw_code)
if code == nil or code < 400 or code > 599 or code % 1 ~= 0 then
  error(rule .. ": code must be a 4xx or 5xx reply code, not " .. tostring(raw_code))
end
local class = math.floor(code / 100)
local message = opts.message or (class .. ".6.0 message rejected " .. name)
if type(message) ~= "string" then
  error(rule .. ": message must be a string")
end
local enhanced, text = message:match("^(%d+%.%d+%.%d+)%s*(.*)$")
if enhanced == nil then
  enhanced, text = class .. ".7.1", message
elseif enhanced:sub(1, 1) ~= tostring(class) then
  error(rule .. ": the message's enhanced status code " .. enhanced .. " must have the class of the code " .. code)
end
local response
if class == 5 then
  response = koukan.reject(code, enhanced, text)
else
  response = koukan.tempfail(code, enhanced, text)
end

-- The signal.

local function contains(items, value)
  for _, v in ipairs(items or {}) do
    if v == value then
      return true
    end
  end
  return false
end

-- record files that this rule fired with action: the rule always, the tag unless it only
-- logged. Each name is filed once, however often the rule fires (PER_RCPT).
local function record(tx, fired)
  local out = tx:signal(OUTPUT) or {}
  local tags, rules = out.matched_tags or {}, out.matched_rules or {}
  if not contains(rules, name) then
    rules[#rules + 1] = name
  end
  if fired ~= "LOG" and not contains(tags, tag) then
    tags[#tags + 1] = tag
  end
  -- An empty table would be filed as {}: leave empty lists out.
  out.matched_rules = rules
  if #tags > 0 then
    out.matched_tags = tags
  end
  tx:set_signal(OUTPUT, out)
end

local function fire(tx, rcpt)
  local fired = draw()
  record(tx, fired)
  local to = "(the transaction)"
  if rcpt ~= nil then
    to = rcpt.address
  end
  koukan.log.info("policy_action", "tag", tag, "rule", name, "action", fired, "rcpt", to)
  if fired == "REJECT" then
    return response
  end
  return nil
end

local M = {}

if mode == "PER_RCPT" then
  -- Each new recipient on its own: no group, no retirement; "not known" does nothing.
  function M.rcpt(tx, rcpt)
    if match(tx, rcpt) then
      return fire(tx, rcpt)
    end
  end
  return M
end

-- The whole transaction, once per stage.

-- stage_key names the current stage, the same for every policy_action step of one chain
-- pass: MAIL, one batch of recipients (told apart by how many recipients there are by
-- then), the data.
local function stage_key(tx, stage)
  if stage == "rcpt" then
    stage = "rcpt:" .. #tx.rcpt_to
  end
  return tx.attempt .. "/" .. stage
end

local function unmet_now(tx, key)
  local u = tx:signal(UNMET)
  return u ~= nil and u.stage == key and contains(u.tags, tag)
end

local function mark_unmet(tx, key)
  local u = tx:signal(UNMET)
  if u == nil or u.stage ~= key then
    u = {stage = key, tags = {}}
  end
  if not contains(u.tags, tag) then
    u.tags[#u.tags + 1] = tag
  end
  tx:set_signal(UNMET, u)
end

local function judge(tx, key)
  if unmet_now(tx, key) then
    return nil
  end
  local out = tx:signal(OUTPUT)
  if out ~= nil and (contains(out.matched_tags, tag) or contains(out.matched_rules, name)) then
    return nil
  end
  local r = match(tx, nil)
  if r == nil then
    mark_unmet(tx, key)
    return nil
  end
  if r then
    return fire(tx, nil)
  end
  return nil
end

function M.mail(tx)
  return judge(tx, stage_key(tx, "mail"))
end

-- The rcpt hook runs once per new recipient, but the stage is judged once: the first call
-- decides, and the decision answers each recipient of the stage. It is kept for the calls
-- of this one pass (the same tx) and let go at the stage's last recipient.
local decided = {tx = nil, response = nil}

function M.rcpt(tx, rcpt)
  local response
  if decided.tx == tx then
    response = decided.response
  else
    response = judge(tx, stage_key(tx, "rcpt"))
  end
  if rcpt.index < #tx.rcpt_to then
    decided.tx, decided.response = tx, response
  else
    decided.tx, decided.response = nil, nil
  end
  return response
end

function M.data(tx)
  return judge(tx, stage_key(tx, "data"))
end

return M
