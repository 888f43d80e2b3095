-- wrk script of bench/load.sh: one path per wrk process (-t1), its requests
-- written beforehand by bench/load/run.py as raw HTTP.
--
--   wrk -t1 -c N -d 60s -s bench/load/load.lua URL -- FILE MODE [DELAY_MS]
--
-- MODE "list": FILE holds requests separated by NUL bytes, sent in turn
--   (each signed order is its own request; after the last, the first again,
--   and the answers say Idempotent-Replayed: counted as "replayed").
-- MODE "template": FILE holds one request; in each copy "@@IP@@" becomes a
--   client address (X-Forwarded-For: 4,096 of them in turn, so no one
--   client passes the per-address rate limit) and "@@N@@" a 10-digit
--   counter unique to this run (usage records' idempotency keys; the body
--   keeps its length).
-- DELAY_MS: each connection waits this long before its next request (the
--   logins, offered at a set rate).
--
-- done() prints one JSON line: requests, statuses (with the first body of
-- each status >= 400), socket errors, latency percentiles (µs).

local parts, list, mode, delay_ms
local n, idx = 0, 0
counts = {}
samples = {}
replayed = 0

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function split(s, sep)
  local out, from = {}, 1
  while true do
    local a, b = string.find(s, sep, from, true)
    if not a then
      out[#out + 1] = string.sub(s, from)
      return out
    end
    out[#out + 1] = string.sub(s, from, a - 1)
    from = b + 1
  end
end

function init(args)
  local file = args[1]
  mode = args[2]
  delay_ms = tonumber(args[3] or "0")
  local s = read_all(file)
  if mode == "list" then
    list = split(s, "\0")
    if list[#list] == "" then list[#list] = nil end
    n = #list
  else
    -- Pieces between placeholders, and which placeholder follows each.
    parts = {}
    local from = 1
    while true do
      local a, b = string.find(s, "@@[A-Z]+@@", from)
      if not a then
        parts[#parts + 1] = string.sub(s, from)
        break
      end
      parts[#parts + 1] = string.sub(s, from, a - 1)
      parts[#parts + 1] = { string.sub(s, a + 2, b - 2) }
      from = b + 1
    end
  end
end

function request()
  idx = idx + 1
  if mode == "list" then
    return list[(idx - 1) % n + 1]
  end
  local ip = (idx - 1) % 4096
  local out = {}
  for i = 1, #parts do
    local p = parts[i]
    if type(p) == "table" then
      if p[1] == "IP" then
        out[i] = string.format("10.%d.%d.%d", 1 + math.floor(ip / 65536), math.floor(ip / 256) % 256, ip % 256)
      else
        out[i] = string.format("%010d", idx)
      end
    else
      out[i] = p
    end
  end
  return table.concat(out)
end

function delay()
  return delay_ms
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status >= 400 and not samples[status] then
    samples[status] = string.sub(body or "", 1, 300)
  end
  if headers["Idempotent-Replayed"] or headers["idempotent-replayed"] then
    replayed = replayed + 1
  end
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local statuses, bodies, rep = {}, {}, 0
  for _, t in ipairs(threads) do
    for code, c in pairs(t:get("counts")) do
      statuses[code] = (statuses[code] or 0) + c
    end
    for code, b in pairs(t:get("samples")) do
      bodies[code] = b
    end
    rep = rep + t:get("replayed")
  end
  local st = {}
  for code, c in pairs(statuses) do
    st[#st + 1] = string.format('"%d": %d', code, c)
  end
  local sm = {}
  for code, b in pairs(bodies) do
    -- A JSON string: the body's quotes, backslashes and control bytes escaped.
    local esc = string.gsub(b, '[%c"\\]', function(ch) return string.format("\\u%04x", string.byte(ch)) end)
    sm[#sm + 1] = string.format('"%d": "%s"', code, esc)
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "statuses": {%s}, "samples": {%s}, "replayed": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
      .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes, table.concat(st, ", "), table.concat(sm, ", "), rep,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
