local M = {}
function M.data(tx, msg)
  local subject = msg:header("Subject")
  if subject:find("smoke") then
    local missing = nil
    return missing.field
  end
end
return M
