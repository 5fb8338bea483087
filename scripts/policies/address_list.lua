-- address_list: routes the recipients on a list to one destination (reference §6.9).
--
--   policy:
--     name: address_list
--     domains: [example.com]      # none: any domain
--     prefixes: [bob, alice]      # local parts; none: every local part (a catch-all)
--     delimiter: "+"              # bob+anything is bob
--     destination: {endpoint: mailbox}
--
-- A recipient on the list goes to the destination; without a destination it is rejected
-- as unknown. Anyone else is not this policy's: the next router decides.
local opts = ...
local on_list = koukan.address_list.new{
  domains = opts.domains or {},
  prefixes = opts.prefixes or {},
  delimiter = opts.delimiter or "",
}

return function(tx, rcpt)
  if not on_list(rcpt.address) then
    return nil
  end
  return opts.destination or koukan.reject(550, "5.1.1", "mailbox does not exist")
end
