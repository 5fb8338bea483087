-- address_list: is an address on a list? (reference §7.4; the list works as in the
-- address_list routing policy, §6.9)
--
-- Mail from our own domains must come from our own networks:
--
--   - filter: policy_action
--     tag: spoofing
--     match:
--       all:
--       - {matcher: address_list, which_addr: header_from, domains: [example.com]}
--       - {not: {matcher: network_address, cidr: 192.0.2.0/24}}
--     action: REJECT
--     code: 550
--     message: 5.7.1 not authorized to send as example.com
--
-- Options:
--   domains      domains on the list; none: any domain (compared as lower-case A-labels)
--   prefixes     local parts on the list; none: every local part (case-insensitive)
--   delimiter    subaddress delimiter, e.g. "+": bob+news is on the list as bob
--   which_addr   the address judged:
--                  mail_from (default)  the envelope sender; nil before MAIL, and the null
--                                       path <> is on no list
--                  rcpt_to              the recipient (mode: PER_RCPT); for the whole
--                                       transaction, whether any recipient so far is on it
--                  header_from          the From: address that message_validation found;
--                                       nil until message_validation has run, false when
--                                       the message has no single From: address
local opts = ...

local MESSAGE_VALIDATION = "koukan.message_validation_filter.MessageValidationFilter"

local which = opts.which_addr or "mail_from"
if which ~= "mail_from" and which ~= "rcpt_to" and which ~= "header_from" then
  error("address_list: which_addr must be mail_from, rcpt_to or header_from, not " .. tostring(which))
end

local on_list = koukan.address_list.new{
  domains = opts.domains or {},
  prefixes = opts.prefixes or {},
  delimiter = opts.delimiter or "",
}

local function mail_from(tx)
  local from = tx.mail_from
  if from == nil then
    return nil
  end
  return from ~= "" and on_list(from)
end

local function rcpt_to(tx, rcpt)
  if rcpt ~= nil then
    return on_list(rcpt.address)
  end
  local all = tx.rcpt_to
  if #all == 0 then
    return nil
  end
  for _, address in ipairs(all) do
    if on_list(address) then
      return true
    end
  end
  return false
end

local function header_from(tx)
  local validation = tx:signal(MESSAGE_VALIDATION)
  if validation == nil then
    return nil
  end
  local from = validation.header_from
  return type(from) == "string" and from ~= "" and on_list(from)
end

if which == "rcpt_to" then
  return rcpt_to
elseif which == "header_from" then
  return header_from
end
return mail_from
