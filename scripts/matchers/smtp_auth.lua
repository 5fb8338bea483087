-- smtp_auth: did the SMTP client authenticate (SMTP AUTH)? (reference §7.4)
--
-- A relay policy for a submission port: authenticated clients may send anywhere, others
-- are refused.
--
--   - filter: policy_action
--     tag: relay
--     match: {not: {matcher: smtp_auth}}
--     action: REJECT
--     code: 550
--     message: 5.7.1 relaying denied
--
-- No options. Not known (nil) when the transaction did not come from the SMTP gateway
-- (mail posted over REST has no SMTP session).
return function(tx, rcpt)
  local meta = tx.smtp_meta
  if meta == nil then
    return nil
  end
  return meta.auth ~= nil and meta.auth ~= false and meta.auth ~= ""
end
