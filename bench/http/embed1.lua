-- embed1.lua - POST /v1/embeddings with one short text, a different one
-- each request (cycling through SENTENCES).
dofile("bench/http/common.lua")

local requests, next_index = {}, 1

function init(args)
  for i, s in ipairs(SENTENCES) do
    requests[i] = post("/v1/embeddings", '{"model": "all-MiniLM-L6-v2", ' ..
                       '"input": ' .. json_string(s) .. '}')
  end
  next_index = (thread_index or 0) * 7 % #requests + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end
