-- message_validation: rates how well formed the message is (reference §6.11).
--
--   - filter: message_validation     # no options
--
-- Files the signal "koukan.message_validation_filter.MessageValidationFilter":
--   {status = 0 NONE | 1 BASIC | 2 MEDIUM | 3 HIGH, err = "why not one level higher",
--    received_header_count = n, header_from = "address of From"}
--   NONE    the header section cannot be told from the body
--   BASIC   header fields, but with bytes they may not have (8-bit without SMTPUTF8,
--           control characters), or From, Date or Message-ID missing, repeated or invalid
--   MEDIUM  exactly one valid From, Date and Message-ID, but a defect in the MIME tree
--   HIGH    no defect found
-- header_from is there when From holds exactly one address (address_list's
-- which_addr: header_from uses it). UTF-8 header fields are allowed when MAIL had
-- SMTPUTF8. It rejects nothing: a policy_action rule with the message_validation
-- matcher (validity_threshold, max_received_headers) does.
local NAME = "koukan.message_validation_filter.MessageValidationFilter"

local M = {}

function M.data(tx, msg)
  local params = tx.mail_params or {}
  local v, err = koukan.mime.validate(msg, {smtputf8 = params.SMTPUTF8 ~= nil})
  if v == nil then
    error("message_validation: reading the message: " .. err)
  end
  tx:set_signal(NAME, {
    status = v.status,
    err = v.err,
    received_header_count = v.received_header_count,
    header_from = v.header_from,
  })
end

return M
