-- smtp_tls: did the SMTP client use TLS (STARTTLS or implicit TLS)? (reference §7.4)
--
--   - filter: policy_action
--     tag: tls_required
--     match: {not: {matcher: smtp_tls}}
--     action: REJECT
--     code: 530
--     message: 5.7.0 must issue a STARTTLS command first
--
-- No options. Not known (nil) when the transaction did not come from the SMTP gateway
-- (mail posted over REST has no SMTP session).
return function(tx, rcpt)
  local meta = tx.smtp_meta
  if meta == nil then
    return nil
  end
  return meta.tls ~= nil and meta.tls ~= false and meta.tls ~= ""
end
