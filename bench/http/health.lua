-- health.lua - GET /health (wrk's static request); only adds the RESULT
-- line of common.lua.
dofile("bench/http/common.lua")
