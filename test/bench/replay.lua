-- wrk script: replays pre-built raw HTTP/1.1 requests round-robin and prints one JSON summary line.
-- Usage: wrk ... -s replay.lua URL -- FILE, where FILE holds records "<byte length>\n<raw request bytes>".
local reqs = {}
local count = 0
local next_index = 0

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while pos <= #data do
    local nl = string.find(data, "\n", pos, true)
    local len = tonumber(string.sub(data, pos, nl - 1))
    reqs[#reqs + 1] = string.sub(data, nl + 1, nl + len)
    pos = nl + 1 + len
  end
  count = #reqs
  -- Threads start at different requests, so concurrent connections mostly touch different keys.
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  next_index = math.random(count) - 1
end

function request()
  next_index = (next_index + 1) % count
  return reqs[next_index + 1]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
