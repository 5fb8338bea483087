-- matchers/dkim_check: matches on the results of the dkim_check step (the reference's
-- DkimCheckFilter output). It matches if ANY signature has the status and either:
--
--   status      temp_err, dkim_pass (or pass), fail or unknown_algo; default dkim_pass
--   alignment   with the header From domain: domain (the same), same_sld (the same
--               organizational domain, or the same domain) or other (any);
--               default same_sld
--   domains     or instead: a list of domains one of which d= must be, exactly
--
-- A message without signatures does not match; before dkim_check ran the answer is not
-- known yet (nil).
local opts = ...
local NAME = "koukan.dkim_check_filter.DkimCheckFilter"

local STATUSES = {temp_err = 0, temperror = 0, dkim_pass = 1, pass = 1, fail = 2, unknown_algo = 3}
-- Alignments are ordered: a better one also satisfies a looser one.
local ALIGNMENTS = {domain = 0, same_sld = 1, other = 2}

local function lookup(names, value, option)
  local v = names[tostring(value):lower()]
  if v == nil then
    local known = {}
    for name in pairs(names) do known[#known + 1] = name end
    table.sort(known)
    error(("dkim_check matcher: %s %q is not one of %s"):format(option, tostring(value), table.concat(known, ", ")))
  end
  return v
end

local want_status = lookup(STATUSES, opts.status or "dkim_pass", "status")

local domains, want_alignment
if opts.domains then
  if opts.alignment then error("dkim_check matcher: give alignment or domains, not both") end
  domains = {}
  for _, d in ipairs(opts.domains) do domains[d:lower():gsub("%.$", "")] = true end
else
  want_alignment = lookup(ALIGNMENTS, opts.alignment or "same_sld", "alignment")
end

return function(tx, rcpt)
  local out = tx:signal(NAME)
  if out == nil then return nil end
  for _, sig in ipairs(out.results or {}) do
    if sig.status == want_status then
      if domains then
        if sig.domain and domains[sig.domain:lower()] then return true end
      elseif (sig.alignment or 2) <= want_alignment then
        return true
      end
    end
  end
  return false
end
