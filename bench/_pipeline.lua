-- Copyright 2026 the wirestream authors. MIT license.
-- wrk script: every write sends `depth` requests back to back (HTTP/1.1 pipelining), the
-- approach of wrk's own scripts/pipeline.lua. wrk waits for all `depth` responses before the
-- next batch and counts each response as one request.
--
--   wrk -t1 -c64 -d10s -s bench/_pipeline.lua http://127.0.0.1:8000/ -- 16

init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
