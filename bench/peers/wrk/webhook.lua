-- webhook.lua - POST /webhook/tally for bench/peers/run.sh: Tally
-- FORM_RESPONSE deliveries, each with a new eventId (so every one is
-- embedded, compared with the earlier ones and stored, never answered as
-- a duplicate), the same bodies for lode and the Python stack.  The run
-- tag (wrk ... -- TAG) keeps the ids of one run apart from the last one's.
dofile("bench/http/common.lua")

local tag, counter = "run", 0

function init(args)
  tag = (args[1] or "run") .. "-" .. (thread_index or 0)
end

function request()
  counter = counter + 1
  local problem = SENTENCES[(counter + (thread_index or 0) * 7) % #SENTENCES + 1]
  local id = tag .. "-" .. counter
  local body = '{"eventId": ' .. json_string(id) ..
    ', "eventType": "FORM_RESPONSE", "createdAt": "2025-01-21T10:00:00Z"' ..
    ', "data": {"responseId": ' .. json_string("r-" .. id) ..
    ', "formId": "bench", "formName": "Support", "fields": [' ..
    '{"key": "question_plan", "label": "Plan", "type": "MULTIPLE_CHOICE"' ..
    ', "value": ["o2"], "options": [{"id": "o1", "text": "Free"}' ..
    ', {"id": "o2", "text": "Pro"}]}, ' ..
    '{"key": "question_problem", "label": "Problem", "type": "TEXTAREA"' ..
    ', "value": ' .. json_string(problem) .. '}]}}'
  return post("/webhook/tally", body)
end
