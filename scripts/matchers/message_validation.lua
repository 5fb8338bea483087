-- message_validation: matches on how well formed the message_validation step found the
-- message (reference §6.11).
--
--   match: {matcher: koukan.message_validation_filter.MessageValidationFilter,
--           validity_threshold: MEDIUM}
--
-- Options, each optional; every one given must hold:
--   validity_threshold: NONE|BASIC|MEDIUM|HIGH   the message is rated below this level
--                                                (it is worse than that)
--   max_received_headers: n                      it has more than n Received fields
-- Not known (nil) before the message is complete.
local opts = ...
local NAME = "koukan.message_validation_filter.MessageValidationFilter"
local LEVELS = {NONE = 0, BASIC = 1, MEDIUM = 2, HIGH = 3}

local threshold = nil
if opts.validity_threshold then
  threshold = LEVELS[tostring(opts.validity_threshold):upper()]
  if threshold == nil then
    error(string.format("message_validation matcher: validity_threshold must be NONE, BASIC, MEDIUM or HIGH, not %q",
      tostring(opts.validity_threshold)))
  end
end
local max_received = opts.max_received_headers and tonumber(opts.max_received_headers)

return function(tx)
  local sig = tx:signal(NAME)
  if sig == nil then
    return nil
  end
  local unknown = false
  if threshold ~= nil then
    if sig.status == nil then
      unknown = true
    elseif sig.status >= threshold then
      return false
    end
  end
  if max_received ~= nil then
    if sig.received_header_count == nil then
      unknown = true
    elseif sig.received_header_count <= max_received then
      return false
    end
  end
  if unknown then
    return nil
  end
  return true
end
