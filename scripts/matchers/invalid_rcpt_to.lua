-- invalid_rcpt_to: is a recipient (RCPT TO) not a valid address? (reference §7.4)
--
--   - filter: policy_action
--     tag: valid_envelope
--     mode: PER_RCPT
--     match: {matcher: invalid_rcpt_to}
--     action: REJECT
--     code: 501
--     message: 5.1.3 Bad mailbox address syntax
--
-- No options. Per recipient (mode: PER_RCPT) it judges that recipient; for the whole
-- transaction it matches if any recipient so far is invalid, and is not known (nil) before
-- the first.
local function invalid(address)
  local a = koukan.addr.parse(address)
  return a == nil or a.null or a.domain == nil or a.domain == ""
end

return function(tx, rcpt)
  if rcpt ~= nil then
    return invalid(rcpt.address)
  end
  local all = tx.rcpt_to
  if #all == 0 then
    return nil
  end
  for _, address in ipairs(all) do
    if invalid(address) then
      return true
    end
  end
  return false
end
