-- common.lua - shared by the wrk scripts of bench/http.sh (each one loads
-- it with dofile, so wrk must run from the repository root, as http.sh
-- does).  Holds the texts the requests carry and the done() that prints
-- one machine-readable RESULT line for http.sh to parse.
--
-- Requests are built once in init() and then only cycled through, so wrk
-- spends its time sending, not formatting.  Each wrk thread starts at a
-- different place in the lists, so two threads never send the same text
-- at the same moment; nothing in lode caches, but this keeps the numbers
-- honest if something ever does.

-- Questions the sample corpus (data/sample/) answers; see bench/README.md.
QUERIES = {
  "how many vacation days do I get",
  "Can I carry over unused leave?",
  "How much sick pay do I get?",
  "How long is maternity leave?",
  "How do I claim expenses?",
  "What is the hotel limit in London?",
  "Can I work from another country?",
  "What is the minimum password length?",
  "When is pay day?",
  "How much is the learning budget?",
  "How do I report a lost laptop?",
  "What is the pension match?",
  "How many hours is the working week?",
  "What gifts can I accept?",
  "How fast must we answer an access request?",
  "How do I report fraud anonymously?",
  "Can I use AI tools at work?",
}

-- Short texts (10-15 tokens each) for the embeddings route.
SENTENCES = {
  "The quarterly report is due at the end of next week.",
  "Please book the meeting room on the second floor for Tuesday.",
  "Our office in Lisbon closes early on public holidays.",
  "Remember to submit your travel receipts before the cut-off.",
  "The new laptop arrived but the charger is missing.",
  "Can someone review my pull request before lunch?",
  "The printer on the third floor is out of toner again.",
  "I will be working from home on Friday afternoon.",
  "The onboarding session starts at nine in the main hall.",
  "Payroll questions should go to the finance team.",
  "The fire drill is scheduled for Thursday morning.",
  "Our customer asked for a refund on the annual plan.",
  "The database migration finished without any errors.",
  "Please update your password before the end of the month.",
  "The train to Dublin was delayed by forty minutes.",
  "We need two more volunteers for the charity run.",
  "The kitchen will be cleaned on Wednesday evening.",
  "Her parental leave starts on the first of June.",
  "The team lunch is moved to the Italian place nearby.",
  "The server room temperature alarm went off last night.",
  "He asked whether the learning budget covers conferences.",
  "The contract renewal needs a signature from legal.",
  "Bike parking is available behind the main building.",
  "The survey results will be shared at the town hall.",
  "Expenses over fifty euros need an itemised receipt.",
  "My manager approved the extra day of annual leave.",
  "The security team asks everyone to lock their screens.",
  "The coffee machine on the ground floor is broken.",
  "New starters get their badges on the first day.",
  "The sales team exceeded its target this quarter.",
  "Please do not share customer data in public channels.",
  "The performance review cycle opens in October.",
}

-- A JSON string literal (the texts here are plain, but be safe).
function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == '\\' then return '\\\\' end
    return string.format('\\u%04x', c:byte())
  end) .. '"'
end

function json_strings(list)
  local out = {}
  for i, s in ipairs(list) do out[i] = json_string(s) end
  return "[" .. table.concat(out, ",") .. "]"
end

JSON_HEADERS = { ["Content-Type"] = "application/json" }

function post(path, body)
  return wrk.format("POST", path, JSON_HEADERS, body)
end

-- Make this script send the given requests in turn: init() builds them
-- with build() (a list of wrk.format strings) and starts each thread at a
-- different place; request() cycles.
function cycle(build)
  local requests, next_index = {}, 1
  function init(args)
    requests = build()
    next_index = (thread_index or 0) * 7 % #requests + 1
  end
  function request()
    local r = requests[next_index]
    next_index = next_index % #requests + 1
    return r
  end
end

-- setup() runs once per wrk thread in the main Lua state: number them.
local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

-- One line for http.sh: counts, rate and the latency percentiles wrk
-- computed (microseconds in, milliseconds out).  wrk's percentiles include
-- its own correction for coordinated omission: see bench/README.md.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.2f p50_ms=%.3f p99_ms=%.3f " ..
    "connect=%d read=%d write=%d timeout=%d status=%d\n",
    summary.requests, summary.duration / 1e6,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect, e.read, e.write, e.timeout, e.status))
end
