-- embed32.lua - POST /v1/embeddings with 32 short texts: all of SENTENCES,
-- starting at a different one each request, so no two consecutive bodies
-- are the same.
dofile("bench/http/common.lua")

cycle(function()
  local requests, n = {}, #SENTENCES
  for start = 1, n do
    local inputs = {}
    for i = 0, 31 do inputs[#inputs + 1] = SENTENCES[(start + i - 1) % n + 1] end
    requests[start] = post("/v1/embeddings", '{"model": "all-MiniLM-L6-v2", ' ..
                           '"input": ' .. json_strings(inputs) .. '}')
  end
  return requests
end)
