-- soak.lua - the mixed load of the RSS soak in bench/http.sh.  Every
-- 100 requests of a thread are, in a fixed shuffled order:
--
--   30 GET /health                 35 POST /search (QUERIES)
--   20 POST /v1/embeddings, 1 text  5 POST /v1/embeddings, 32 texts
--    3 POST a new document          3 DELETE a document posted earlier
--    4 POST a document that replaces one of 4 fixed ids
--
-- Documents go to collection "bench-soak" (not the searched one).  A
-- delete names the oldest new document of its thread, once at least
-- DELETE_LAG of them are waiting, so the document was written a few
-- hundred requests before and the delete finds it; otherwise the slot
-- posts another new document.  The thread stops itself after the number
-- of responses given as the script's argument (wrk ... -- N); http.sh then
-- ends wrk (wrk itself only stops on its --duration or SIGINT).
dofile("bench/http/common.lua")

local MIX = { health = 30, search = 35, embed1 = 20, embed32 = 5,
              doc_new = 3, doc_delete = 3, doc_replace = 4 }
local DELETE_LAG = 6
local COLLECTION_PATH = "/collections/bench-soak/documents"

local pattern, position = {}, 1
local counters = {}
local waiting, wait_head, wait_tail = {}, 1, 0   -- FIFO of new ids
local new_serial = 0
local quota, responses = 0, 0

function init(args)
  quota = tonumber(args[1]) or 1e12
  for kind, n in pairs(MIX) do
    for _ = 1, n do pattern[#pattern + 1] = kind end
  end
  table.sort(pattern)              -- pairs() order is unspecified
  local seed = 12345               -- a fixed shuffle (LCG, Fisher-Yates)
  for i = #pattern, 2, -1 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local j = seed % i + 1
    pattern[i], pattern[j] = pattern[j], pattern[i]
  end
  position = (thread_index or 0) * 37 % #pattern + 1
  for kind in pairs(MIX) do counters[kind] = (thread_index or 0) * 7 end
end

local function pick(list, kind)
  counters[kind] = counters[kind] + 1
  return list[counters[kind] % #list + 1]
end

local function document_body(id, n)
  local text = "# Note " .. n .. "\n\n" .. SENTENCES[n % #SENTENCES + 1] ..
               " " .. SENTENCES[(n * 7 + 3) % #SENTENCES + 1]
  return '{"documents": [{"id": ' .. json_string(id) .. ', "title": "Note ' ..
         n .. '", "text": ' .. json_string(text) .. '}]}'
end

local function new_document()
  new_serial = new_serial + 1
  local id = "t" .. (thread_index or 0) .. "-new-" .. new_serial
  wait_tail = wait_tail + 1
  waiting[wait_tail] = id
  return post(COLLECTION_PATH, document_body(id, new_serial))
end

function request()
  local kind = pattern[position]
  position = position % #pattern + 1
  if kind == "health" then
    return wrk.format("GET", "/health")
  elseif kind == "search" then
    return post("/search", '{"query": ' .. json_string(pick(QUERIES, kind)) ..
                ', "k": 5}')
  elseif kind == "embed1" then
    return post("/v1/embeddings", '{"model": "all-MiniLM-L6-v2", "input": ' ..
                json_string(pick(SENTENCES, kind)) .. '}')
  elseif kind == "embed32" then
    counters[kind] = counters[kind] + 1
    local start, inputs = counters[kind], {}
    for i = 0, 31 do
      inputs[#inputs + 1] = SENTENCES[(start + i) % #SENTENCES + 1]
    end
    return post("/v1/embeddings", '{"model": "all-MiniLM-L6-v2", "input": ' ..
                json_strings(inputs) .. '}')
  elseif kind == "doc_replace" then
    counters[kind] = counters[kind] + 1
    local n = counters[kind] % 4
    return post(COLLECTION_PATH,
                document_body("t" .. (thread_index or 0) .. "-fixed-" .. n,
                              counters[kind]))
  elseif kind == "doc_delete" and wait_tail - wait_head + 1 > DELETE_LAG then
    local id = waiting[wait_head]
    waiting[wait_head] = nil
    wait_head = wait_head + 1
    return wrk.format("DELETE", COLLECTION_PATH .. "/" .. id)
  end
  return new_document()             -- doc_new, or a delete with none due
end

function response(status, headers, body)
  responses = responses + 1
  if responses == quota then wrk.thread:stop() end
end
