-- wrk script for bench/http.py: each thread is one advisor on one connection, pressing
-- "process a new message" then replying to what it got, in a loop; (PI_MODE reply-next) the
-- same cycle as one reply-and-next request each (a first press aside); or (PI_MODE ingest)
-- one upstream connection posting one new message per request.
-- Env: PI_TOKENS (file: one "advisor token" per line), PI_TEAM, PI_MODE (cycle | next |
-- reply-next | ingest), PI_INGEST_TOKEN (ingest).
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("n", counter)
  table.insert(threads, thread)
end

function init(args)
  local lines = {}
  for line in io.lines(os.getenv("PI_TOKENS")) do table.insert(lines, line) end
  local adv, token = lines[n]:match("(%S+) (%S+)")
  team = os.getenv("PI_TEAM")
  mode = os.getenv("PI_MODE") or "cycle"
  base = "/v1/teams/" .. team .. "/advisors/" .. adv
  headers = {["Authorization"] = "Bearer " .. token}
  if mode == "ingest" then
    headers = {["Authorization"] = "Bearer " .. os.getenv("PI_INGEST_TOKEN"),
               ["Content-Type"] = "application/json"}
  end
  sent = 0
  msg = nil
  nexts, replies, empties, errors = 0, 0, 0, 0
end

function request()
  if mode == "ingest" then
    sent = sent + 1
    local id = "w" .. n .. "-" .. sent
    return wrk.format("POST", "/v1/teams/" .. team .. "/messages", headers,
      '{"id": "' .. id .. '", "conversation": "c' .. id .. '", "customer": "u' .. (sent % 5000) ..
      '", "channel": "whatsapp", "body": {"text": "Where is my parcel?"}}')
  end
  if msg and mode == "cycle" then
    return wrk.format("POST", base .. "/messages/" .. msg .. "/reply", headers)
  end
  if msg and mode == "reply-next" then
    return wrk.format("POST", base .. "/messages/" .. msg .. "/reply-and-next", headers)
  end
  return wrk.format("POST", base .. "/next", headers)
end

function response(status, headers, body)
  if mode == "ingest" then
    nexts = nexts + 1  -- (counted as "nexts": one message in)
    if status ~= 202 then errors = errors + 1 end
    return
  end
  if msg and mode == "cycle" then
    msg = nil
    replies = replies + 1
    if status ~= 200 then errors = errors + 1 end
    return
  end
  if msg and mode == "reply-next" then
    replies = replies + 1
    if status ~= 200 then errors = errors + 1 end
    if body:find('"status":"empty"', 1, true) then empties = empties + 1 end
  end
  nexts = nexts + 1
  if status == 200 then
    msg = body:match('"id":"([^"]+)"')
  elseif status == 204 then
    empties = empties + 1
  else
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local n, r, e, x = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    n = n + t:get("nexts"); r = r + t:get("replies")
    e = e + t:get("empties"); x = x + t:get("errors")
  end
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "nexts": %d, "replies": %d, "empty": %d, ' ..
    '"errors": %d, "socket_errors": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, ' ..
    '"max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, n, r, e, x,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
