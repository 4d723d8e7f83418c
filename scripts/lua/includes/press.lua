-- press.lua: "Process a new message" after the call's checks: the first conversation of the
-- team's ordered list (priority groups in order, then the team's order inside a group) with
-- all its waiting messages, to advisor `a` (logged in, in a push role: the caller checked,
-- before its first write). Ends a running break. While the advisor holds as many
-- unprocessed pushed conversations as their role allows, answers those again (so a retry is
-- safe). Used by next.lua and reply_next.lua (a reply and the next press in one call).
-- Cost: per group at most the index's head and its bucket's pop (queue.lua), O(G + log N);
-- never a scan of the stock.
--@include keys
--@include advisors
--@include views
--@include handover
--@include stock

-- The press's answer: {status = 'assigned' | 'pending' | 'empty', messages}.
local function press(cfg, a, role, now)
  touch(a, now)
  end_break(cfg, a, now, 'processed a new message')

  if (O.req and O.req ~= '' and O.req == a.req) or
      redis.call('HLEN', K.pconv(a.id)) >= role.cap then
    local pushed = as_in_hands(a.id, redis.call('ZRANGE', K.push(a.id), 0, -1))
    if #pushed > 0 then
      return {status = 'pending', messages = views(pushed)}
    end
  end

  -- Remember the request id (only when it changes: most presses carry none).
  local function remember_request()
    if (O.req or '') ~= (a.req or '') then
      redis.call('HSET', K.adv(a.id), 'req', O.req or '')
    end
  end

  -- Conversations whose wait crossed a `waiting_longer_than` threshold are re-placed first
  -- (up to O.esc; the worker's escalator moves the rest), so the press sees the list as it
  -- stands now. A waiting conversation whose other messages another logged-in advisor holds
  -- goes to that advisor (one conversation, one holder); the press takes the next one. Rare
  -- (a session resumed while its requeue was under way), and bounded per press.
  escalate_due(cfg, tonumber(O.esc or 10))
  local handed, given = 0, nil
  push_slots(cfg, a.sk, function(slot)
    while true do
      local conv = Q.slot_pop(cfg, slot)
      if not conv then return false end
      local row = conv_row(conv)
      local holder = handed < 20 and holder_of(conv, a.id, row)
      if not holder then
        given = give_conv(cfg, a.id, conv, 'push', now, true, true, row)
        return true
      end
      handed = handed + 1
      give_conv(cfg, holder, conv, 'affinity', now,
        redis.call('HEXISTS', K.pconv(holder), conv) == 1, true, row)
    end
  end)
  remember_request()
  if given then return {status = 'assigned', messages = given} end
  return {status = 'empty', messages = {}}
end

-- The checks a press makes before anything is written: the advisor is logged in and in a
-- push role. Returns the role.
local function press_allowed(a)
  require_logged_in(a)
  local role = load_role(a.role)
  if not role.push then
    fail('forbidden', 'advisor', 'advisor ' .. a.id .. ' is in role ' .. a.role ..
      ', which is not in push mode: they pick their messages (take)')
  end
  return role
end
