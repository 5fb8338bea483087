-- hello_policy: the smallest routing policy, a starting point for your own. It claims no
-- recipient: nil sends each one on to the next router step. A policy may instead return a
-- destination table ({endpoint = "name", remote_hosts = {...}, options = {...}}) or a
-- response (koukan.reject(550, "5.1.1", "no such user")).
return function(tx, rcpt)
  koukan.log.debug("hello_policy passes", "rcpt", rcpt.address)
  return nil
end
