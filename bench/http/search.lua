-- search.lua - POST /search, k = 5, in the default collection (the sample
-- corpus), cycling through QUERIES: every request embeds its query, and
-- consecutive requests never ask the same question.
dofile("bench/http/common.lua")

cycle(function()
  local requests = {}
  for i, q in ipairs(QUERIES) do
    requests[i] = post("/search", '{"query": ' .. json_string(q) .. ', "k": 5}')
  end
  return requests
end)
