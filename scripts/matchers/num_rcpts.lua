-- num_rcpts: limits the recipients of one transaction (reference §7.4).
--
-- One recipient per transaction on ingress: the second and later recipients are told to
-- try again, in a transaction of their own.
--
--   - filter: policy_action
--     tag: max_rcpts
--     mode: PER_RCPT
--     match: {matcher: num_rcpts, max_rcpts: 1}
--     action: REJECT
--     code: 451
--     message: 4.5.3 too many recipients
--
-- Options:
--   max_rcpts   how many recipients a transaction may have accepted
--
-- Per recipient (mode: PER_RCPT), a recipient matches when max_rcpts of the recipients
-- before it were accepted already. For the whole transaction, it matches when more than
-- max_rcpts recipients were accepted or are still pending.
local opts = ...

local max_rcpts = tonumber(opts.max_rcpts)
if max_rcpts == nil or max_rcpts < 0 then
  error("num_rcpts: max_rcpts must be a number of recipients, 0 or more")
end

return function(tx, rcpt)
  local count, last = 0, #tx.rcpt_to
  if rcpt ~= nil then
    last = rcpt.index - 1
  end
  for i = 1, last do
    local response = tx:rcpt(i).response
    if rcpt ~= nil then
      -- Earlier recipients: only those accepted count.
      if response ~= nil and response.ok then
        count = count + 1
      end
    elseif response == nil or response.ok then
      count = count + 1
    end
  end
  if rcpt ~= nil then
    return count >= max_rcpts
  end
  return count > max_rcpts
end
