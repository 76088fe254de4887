-- SPDX-License-Identifier: MIT
-- wrk script of the http group of tests/bench/run.sh (partreg-http, issue 14).
--
--   wrk -s http.lua -t T -c C -d SECS URL -- get
--       GET URL (path and query as given), as is.
--   wrk -s http.lua -t T -c C -d SECS URL -- post-json BODY
--       POST URL with the JSON BODY (e.g. /v1/readiness/query).
--   wrk -s http.lua -t T -c C -d SECS URL -- lockunlock SOURCE TOKEN FIRST_DAY [SPAN]
--       each connection on its own day of provider "p" of SOURCE,
--       alternating POST URL/partitions/lock and /partitions/unlock with the
--       original query parameters and "Authorization: Bearer TOKEN": lock,
--       unlock, lock, ... A connection writes its next request only after
--       the reply to its last, so C commands are in flight, as with
--       pr_bench_rtt lockunlock -c C; any number of threads works (a few
--       threads for many connections keep wrk from competing with the
--       daemons for the CPU). Thread t takes its days from FIRST_DAY +
--       t * SPAN (days since 1970-01-01; SPAN 1000), one per connection.
--
--       wrk does not tell the script which connection a reply came on, and
--       it may call request() without sending (once, to check the script),
--       so the days are driven by the replies: a 200 names the partition
--       (start) and the command (LOCK, UNLOCK), which puts that day's next
--       request in a queue; request() sends the oldest queued one, or a lock
--       on a day not used yet when none is queued (a connection's first
--       request). A refused day is dropped, a new day takes its place.

-- Every reply but 200 counts as an error, and so does a lockunlock 200
-- that names no day of the thread (the first few are printed on stderr). At the end one line on stdout:
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
		local span = tonumber(args[5] or "1000")
		source, token = args[2], args[3]
		next_day = tonumber(args[4]) + id * span
		last_day = next_day + span - 1
		base = wrk.path:gsub("/$", "")
		auth = { ["Authorization"] = "Bearer " .. token }
		days = {}   -- start (as the reply spells it) -> { lock = ..., unlock = ... }
		queue = {}  -- requests to send, oldest first
		qhead, qtail = 1, 0
	elseif mode == "get" then
		req = wrk.format()
	else
		error("http.lua: unknown mode " .. tostring(mode))
	end
end

-- lockunlock: a new day's two requests; returns its lock.
local function new_day()
	if next_day > last_day then
		error("http.lua: thread " .. id .. ": out of days (raise SPAN)")
	end
	local t = next_day * 86400
	next_day = next_day + 1
	local s = os.date("!%Y-%m-%dT%H:%M:%SZ", t)
	local e = os.date("!%Y-%m-%dT%H:%M:%SZ", t + 86400)
	local q = "?start=" .. s .. "&end=" .. e .. "&source_name=" .. source .. "&provider_name=p"
	local d = {
		lock = wrk.format("POST", base .. "/partitions/lock" .. q, auth),
		unlock = wrk.format("POST", base .. "/partitions/unlock" .. q, auth),
	}
	days[s] = d
	return d.lock
end

function request()
	if mode ~= "lockunlock" then
		return req
	end
	if qhead <= qtail then
		local r = queue[qhead]
		queue[qhead] = nil
		qhead = qhead + 1
		return r
	end
	return new_day()
end

-- lockunlock: the day and command a 200 answers; nil if it names none.
local function answered(body)
	local kind = body:match('"type":"(%u+)"')
	local start = body:match('"partition":{.-"start":"([^"]+)"')
	local d = start and days[start]
	if d == nil or (kind ~= "LOCK" and kind ~= "UNLOCK") then
		return nil
	end
	return kind == "LOCK" and d.unlock or d.lock
end

function response(status, headers, body)
	local nxt = nil
	if status == 200 then
		if mode ~= "lockunlock" then
			return
		end
		nxt = answered(tostring(body))
	end
	if nxt ~= nil then
		qtail = qtail + 1
		queue[qtail] = nxt
		return
	end
	errors = errors + 1
	if errors <= 3 then
		io.stderr:write("http.lua: thread " .. id .. ": HTTP " .. status .. ": " .. tostring(body):sub(1, 300) .. "\n")
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
