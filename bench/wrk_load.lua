-- wrk script for bench/load.py: one kind of request per run (BENCH_MODE), every answer's
-- status counted, and a one-line machine-readable summary (latencies in milliseconds).
--   page:  GET the path with the session cookie
--   poll:  the same as an htmx poll with If-None-Match (BENCH_ETAG): answered 304
--   api:   POST /api/v1/call-attempts, 10 new attempts per request (BENCH_KEY, BENCH_SEATS,
--          BENCH_AT), each event id unique to its thread and request
--   login: POST /login with the pre-encoded form bodies of BENCH_BODIES (one per line), in turn
local mode = os.getenv("BENCH_MODE") or "page"
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  sent = 0
  seats, bodies = {}, {}
  for seat in string.gmatch(os.getenv("BENCH_SEATS") or "", "[^,]+") do
    table.insert(seats, seat)
  end
  for body in string.gmatch(os.getenv("BENCH_BODIES") or "", "[^\n]+") do
    table.insert(bodies, body)
  end
  at = os.getenv("BENCH_AT") or ""
  headers = {["User-Agent"] = "seatwise-bench"}
  if mode == "api" then
    headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
    headers["Content-Type"] = "application/json"
  else
    headers["Cookie"] = os.getenv("BENCH_COOKIE")
  end
  if mode == "poll" then
    headers["HX-Request"] = "true"
    headers["If-None-Match"] = os.getenv("BENCH_ETAG")
  elseif mode == "login" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
end

local function attempts()
  local items = {}
  for i = 1, 10 do
    local id = string.format("load-%d-%d-%d", tid, sent, i)
    items[i] = string.format(
      '{"event_id":"%s","seat":"%s","lead_external_id":"L%s","lead":{"name":"Load Lead",'
        .. '"phone":"(415) 555-2671","source":"Zillow","received_at":"%s"},'
        .. '"attempted_at":"%s","disposition":"voicemail_no_answer","duration_seconds":30}',
      id, seats[(sent + i) % #seats + 1], id, at, at)
  end
  return '{"attempts":[' .. table.concat(items, ",") .. "]}"
end

function request()
  sent = sent + 1
  if mode == "api" then
    return wrk.format("POST", "/api/v1/call-attempts", headers, attempts())
  elseif mode == "login" then
    return wrk.format("POST", "/login", headers, bodies[(sent + tid) % #bodies + 1])
  end
  return wrk.format("GET", nil, headers)
end

function response(status, response_headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  local counted = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counted[status] = (counted[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counted) do
    table.insert(parts, string.format("status_%d=%d", status, count))
  end
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f p50=%.2f p95=%.2f p99=%.2f socket_errors=%d %s\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, " ")))
end
