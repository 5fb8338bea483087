-- invalid_mail_from: is the envelope sender (MAIL FROM) not a valid address? (reference §7.4)
--
--   - filter: policy_action
--     tag: valid_envelope
--     match: {matcher: invalid_mail_from}
--     action: REJECT
--     code: 501
--     message: 5.1.3 Bad mailbox address syntax
--
-- No options. The null path <> (bounces) is valid. Not known (nil) before MAIL.
return function(tx, rcpt)
  local from = tx.mail_from
  if from == nil then
    return nil
  end
  if from == "" then
    return false
  end
  local a = koukan.addr.parse(from)
  if a == nil then
    return true
  end
  return not a.null and (a.domain == nil or a.domain == "")
end
