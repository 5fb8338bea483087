return {rcpt = function(tx, rcpt) end}
