return function(tx)
end
