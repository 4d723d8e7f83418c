-- reports.lua: the figures daily reports are made of, written by the scripts that change
-- state, per UTC hour (`rh:<hour>`: a day in any time zone is 23-25 whole hours), so a report
-- is exact and its size bounded by the team (advisors, groups, fixed buckets), never by the
-- number of messages. Kept as long as the day figures (`dttl`). Fields, `|`-separated:
--   p|<adv> pushed, r|<adv> responses, a|<adv> archives, h|<adv> help requests,
--   ra|<adv> messages reassigned away from the advisor (logout, reaper, untouched),
--   b|<adv> break ms, ht|<adv>|<bucket> handle time (push to done) histogram,
--   ga|<group> arrivals into a group, gw|<group>|<bucket> waiting time (arrival to push)
--   histogram (its sum: the group's pushes), gws|<group> waiting ms in all, gwt|<group>
--   pushed within the group's target_wait; `rx:<hour>` the longest wait per group (ZADD GT).
-- And per minute for the live team view (`rm:<minute>`, kept 20 minutes): a|<group>
-- arrivals, p|<group> pushes.
--@include keys
--@include events

local HOUR_MS = 3600000
local MINUTE_MS = 60000
local RECENT_TTL_MS = 20 * MINUTE_MS
-- Bucket upper bounds in seconds (defaults.REPORT_BUCKETS_S, held equal by a test);
-- the last bucket is everything longer.
local BUCKETS = {10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400}

local function bucket(ms_)
  local s = ms_ / 1000
  for i, b in ipairs(BUCKETS) do if s <= b then return i - 1 end end
  return #BUCKETS
end

local function rep_add(cfg, at, field, n)
  add_figure(cfg, K.rep(math.floor(at / HOUR_MS)), field, n)
end

local function rep_recent(at, field, n)
  local k = K.recent(math.floor(at / MINUTE_MS))
  if redis.call('HINCRBY', k, field, int(n)) == n and redis.call('PTTL', k) == -1 then
    redis.call('PEXPIRE', k, int(RECENT_TTL_MS))
  end
end

local function rep_max(cfg, at, group, ms_)
  local k = K.repmax(math.floor(at / HOUR_MS))
  if redis.call('ZADD', k, 'GT', ms(ms_), group) == 1 then
    redis.call('PEXPIRE', k, int(cfg.dttl))
  end
end

-- Pushes of one conversation's messages by a press: `waits` their waiting times (ms).
local function rep_pushed(cfg, now, adv, group, waits, target)
  if #waits == 0 then return end
  local per, sum, most, within = {}, 0, 0, 0
  for _, w in ipairs(waits) do
    local b = bucket(w)
    per[b] = (per[b] or 0) + 1
    sum = sum + w
    if w > most then most = w end
    if target and w <= target * 1000 then within = within + 1 end
  end
  for b, n in pairs(per) do rep_add(cfg, now, 'gw|' .. group .. '|' .. int(b), n) end
  rep_add(cfg, now, 'gws|' .. group, sum)
  rep_add(cfg, now, 'p|' .. adv, #waits)
  rep_recent(now, 'p|' .. group, #waits)
  if target then rep_add(cfg, now, 'gwt|' .. group, within) end
  rep_max(cfg, now, group, most)
end
