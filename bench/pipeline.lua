-- Pipelining: every write carries 16 requests; wrk counts the 16 responses it then reads.
-- The path comes from the URL given to wrk; the depth can be changed with `-- DEPTH`.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

local batch

function init(args)
   local depth = tonumber(args[1]) or 16
   local one = wrk.format(nil, wrk.path)
   batch = string.rep(one, depth)
end

function request()
   return batch
end
