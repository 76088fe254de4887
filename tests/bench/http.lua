-- SPDX-License-Identifier: MIT
-- wrk script of the http group of tests/bench/run.sh (partreg-http, issue 14).
--
--   wrk -s http.lua -t T -c C -d SECS URL -- get
--       GET URL (path and query as given), as is.
--   wrk -s http.lua -t T -c C -d SECS URL -- post-json BODY
--       POST URL with the JSON BODY (e.g. /v1/readiness/query).
--   wrk -s http.lua -t C -c C -d SECS URL -- lockunlock SOURCE TOKEN FIRST_DAY
--       one connection per thread (-t = -c), each on its own day of provider
--       "p" of SOURCE: day FIRST_DAY + thread number (days since
--       1970-01-01), alternating POST URL/partitions/lock and
--       /partitions/unlock with the original query parameters and
--       "Authorization: Bearer TOKEN". A thread's next request is written
--       only after the reply to its last: lock, unlock, lock, ... (after a
--       refusal the same again).
--
-- Every reply but 200 counts as an error (the first few are printed on
-- stderr). At the end one line on stdout:
--   "requests=N secs=S rate=R errors=E p50=US p99=US"
-- errors adds wrk's socket errors (connect, read, write, timeout).

local threads = {}
local counter = 0

function setup(thread)
	thread:set("id", counter)
	counter = counter + 1
	table.insert(threads, thread)
end

function init(args)
	mode = args[1] or "get"
	errors = 0
	if mode == "post-json" then
		wrk.method = "POST"
		wrk.body = args[2]
		wrk.headers["Content-Type"] = "application/json"
		req = wrk.format()
	elseif mode == "lockunlock" then
		local source, token, first = args[2], args[3], tonumber(args[4])
		local t = (first + id) * 86400
		local s = os.date("!%Y-%m-%dT%H:%M:%SZ", t)
		local e = os.date("!%Y-%m-%dT%H:%M:%SZ", t + 86400)
		local base = wrk.path:gsub("/$", "")
		local q = "?start=" .. s .. "&end=" .. e .. "&source_name=" .. source .. "&provider_name=p"
		local h = { ["Authorization"] = "Bearer " .. token }
		lock = wrk.format("POST", base .. "/partitions/lock" .. q, h)
		unlock = wrk.format("POST", base .. "/partitions/unlock" .. q, h)
	elseif mode == "get" then
		req = wrk.format()
	else
		error("http.lua: unknown mode " .. tostring(mode))
	end
end

-- lockunlock: what to send next follows the replies (held flips on each
-- 200), not the calls of request(): wrk may build a request it then does
-- not send.
held = false

function request()
	if mode == "lockunlock" then
		return held and unlock or lock
	end
	return req
end

function response(status, headers, body)
	if status == 200 then
		held = not held
	else
		errors = errors + 1
		if errors <= 3 then
			io.stderr:write("http.lua: thread " .. id .. ": HTTP " .. status .. ": " .. tostring(body):sub(1, 300) .. "\n")
		end
	end
end

function done(summary, latency, requests)
	local e = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
	for _, t in ipairs(threads) do
		e = e + (t:get("errors") or 0)
	end
	local secs = summary.duration / 1e6
	io.write(string.format("requests=%d secs=%.3f rate=%.1f errors=%d p50=%d p99=%d\n",
		summary.requests, secs, summary.requests / secs, e, latency:percentile(50), latency:percentile(99)))
end
