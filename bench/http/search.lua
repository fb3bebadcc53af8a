-- search.lua - POST /search, k = 5, in the default collection (the sample
-- corpus), cycling through QUERIES: every request embeds its query, and
-- consecutive requests never ask the same question.
dofile("bench/http/common.lua")

local requests, next_index = {}, 1

function init(args)
  for i, q in ipairs(QUERIES) do
    requests[i] = post("/search", '{"query": ' .. json_string(q) .. ', "k": 5}')
  end
  next_index = (thread_index or 0) * 7 % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end
