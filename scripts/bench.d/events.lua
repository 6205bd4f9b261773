-- scripts/bench.d/events.lua — wrk script for scripts/bench: POST /v1/events with batches built
-- on the fly, every event id unique (so no batch is a duplicate of another).
--
-- Environment (all set by scripts/bench):
--   AVIARY_EVENTS_SECONDS  measured window; after it each connection finishes the batch it has
--                          in flight and sends no more, so run wrk with -d longer than this
--                          (the rest is a drain: every batch sent gets its answer counted)
--   AVIARY_EVENTS_TS       the `ts` of every event (RFC 3339, in the current month)
--   AVIARY_EVENTS_RUN      a number < 2^31 that makes this run's ids differ from other runs'
--   AVIARY_EVENTS_BATCH    events per request (default 500, at most 1000)
--   AVIARY_EVENTS_KEY      the API key, sent as X-API-Key
--
-- Event ids are "<run>-<thread>-4000-8000-<counter>" in hex: valid UUID text, unique per
-- (run, thread, counter). At the end one line per counter is printed as `aviary_events.<name>=<n>`
-- for scripts/bench to read.

local ffi = require("ffi")
ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } aviary_timespec;
    int clock_gettime(int clock_id, aviary_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("aviary_timespec")
local function now()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
    return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local function env_number(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        if default == nil then error(name .. " is not set") end
        return default
    end
    return assert(tonumber(v), name .. " is not a number")
end

local seconds = env_number("AVIARY_EVENTS_SECONDS")
local run = env_number("AVIARY_EVENTS_RUN")
local batch = env_number("AVIARY_EVENTS_BATCH", 500)
local ts = assert(os.getenv("AVIARY_EVENTS_TS"), "AVIARY_EVENTS_TS is not set")
local key = assert(os.getenv("AVIARY_EVENTS_KEY"), "AVIARY_EVENTS_KEY is not set")

local types = { "message", "answer_rating", "request", "request_error", "response" }
local models = { "gpt-4o", "qwen-max" }
local versions = { "1.8.0", "1.9.0" }
local units = 100000

-- Counters reported at the end (per thread, summed in done()).
local names = { "sent", "answered", "answered_in_window", "ok", "ok_in_window", "non2xx",
                "accepted", "duplicates", "unparsed" }

-- Main state: keep the threads so done() can read their counters.
local threads = {}
local next_thread = 0

function setup(thread)
    next_thread = next_thread + 1
    thread:set("thread_id", next_thread)
    table.insert(threads, thread)
end

-- Thread state. The counters are globals (aviary_<name>) so done() can thread:get() them.
local counter = 0
local deadline

local function bump(name)
    local g = "aviary_" .. name
    _G[g] = (_G[g] or 0) + 1
end

function init(args)
    for _, n in ipairs(names) do _G["aviary_" .. n] = 0 end
    deadline = now() + seconds
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.headers["X-API-Key"] = key
end

-- wrk asks before every request. Before the deadline: send at once. After: park the
-- connection (an hour), so nothing is left in flight when wrk stops. Requests are counted
-- here, not in request(): wrk also calls request() once to check the script.
function delay()
    if now() < deadline then
        bump("sent")
        return 0
    end
    return 3600 * 1000
end

local parts = {}
function request()
    -- thread_id arrives through thread:set after init(); it is a global of this thread's state.
    local tid = thread_id
    for i = 1, batch do
        counter = counter + 1
        local n = counter
        local t = types[n % #types + 1]
        local value
        if t == "answer_rating" then
            value = math.floor(n / 5) % 5 + 1
        elseif t == "response" then
            value = 200 + (n * 37) % 3000
        else
            value = 1
        end
        parts[i] = string.format(
            '{"id":"%08x-%04x-4000-8000-%012x","type":"%s","user_id":"u-%d","ts":"%s","value":%d,"model":"%s","app_version":"%s"}',
            run, tid, n, t, (n * 7919 + tid * 104729) % units, ts, value,
            models[math.floor(n / 7) % 2 + 1], versions[math.floor(n / 11) % 2 + 1])
    end
    return wrk.format(nil, nil, nil, "[" .. table.concat(parts, ",", 1, batch) .. "]")
end

function response(status, headers, body)
    local in_window = now() < deadline
    bump("answered")
    if in_window then bump("answered_in_window") end
    if status >= 200 and status < 300 then
        bump("ok")
        if in_window then bump("ok_in_window") end
        local a = tonumber(string.match(body, '"accepted"%s*:%s*(%d+)'))
        local d = tonumber(string.match(body, '"duplicates"%s*:%s*(%d+)'))
        if a and d then
            aviary_accepted = aviary_accepted + a
            aviary_duplicates = aviary_duplicates + d
        else
            bump("unparsed")
        end
    else
        bump("non2xx")
        bump("status_" .. status)
    end
end

function done(summary, latency, requests)
    local totals = {}
    local statuses = {}
    for _, thread in ipairs(threads) do
        for _, n in ipairs(names) do
            totals[n] = (totals[n] or 0) + (thread:get("aviary_" .. n) or 0)
        end
        for status = 100, 599 do
            local v = thread:get("aviary_status_" .. status)
            if v then statuses[status] = (statuses[status] or 0) + v end
        end
    end
    io.write(string.format("aviary_events.batch=%d\n", batch))
    io.write(string.format("aviary_events.seconds=%s\n", tostring(seconds)))
    for _, n in ipairs(names) do
        io.write(string.format("aviary_events.%s=%d\n", n, totals[n]))
    end
    for status, v in pairs(statuses) do
        io.write(string.format("aviary_events.status_%d=%d\n", status, v))
    end
    io.write(string.format("aviary_events.read_write_timeout_errors=%d\n",
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
