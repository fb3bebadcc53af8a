-- embed1.lua - POST /v1/embeddings with one short text, a different one
-- each request (cycling through SENTENCES).
dofile("bench/http/common.lua")

cycle(function()
  local requests = {}
  for i, s in ipairs(SENTENCES) do
    requests[i] = post("/v1/embeddings", '{"model": "all-MiniLM-L6-v2", ' ..
                       '"input": ' .. json_string(s) .. '}')
  end
  return requests
end)
