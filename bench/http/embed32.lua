-- embed32.lua - POST /v1/embeddings with 32 short texts: all of SENTENCES,
-- starting at a different one each request, so no two consecutive bodies
-- are the same.
dofile("bench/http/common.lua")

local requests, next_index = {}, 1

function init(args)
  local n = #SENTENCES
  for start = 1, n do
    local inputs = {}
    for i = 0, 31 do inputs[#inputs + 1] = SENTENCES[(start + i - 1) % n + 1] end
    requests[start] = post("/v1/embeddings", '{"model": "all-MiniLM-L6-v2", ' ..
                           '"input": ' .. json_strings(inputs) .. '}')
  end
  next_index = (thread_index or 0) * 7 % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end
