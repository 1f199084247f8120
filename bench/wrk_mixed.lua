-- wrk script for bench/bench_load.py: cycles through a list of GET requests.
--
--   wrk -t2 -c50 -d15s --latency -s bench/wrk_mixed.lua http://127.0.0.1:8000 -- PATHS_FILE
--
-- PATHS_FILE has one request a line: "G<TAB>/path" (a plain GET) or "H<TAB>/path" (a GET with the
-- header HX-Request: true, as htmx sends it). Each thread starts at a different place in the list.
-- done() prints lines starting with "BENCH " that bench_load.py reads: the counts, the socket and
-- status errors (status = responses that were not 2xx or 3xx), and latency percentiles in µs.

local requests = {}
local counter = 0
local thread_number = 0

function setup(thread)
  thread:set("id", thread_number)
  thread_number = thread_number + 1
end

function init(args)
  local file = args[1]
  if file == nil then
    error("wrk_mixed.lua needs the paths file: wrk ... -s bench/wrk_mixed.lua URL -- FILE")
  end
  for line in io.lines(file) do
    local kind, path = line:match("^(%a)\t(%S+)$")
    if kind then
      local headers = {}
      if kind == "H" then
        headers["HX-Request"] = "true"
      end
      requests[#requests + 1] = wrk.format("GET", path, headers)
    end
  end
  if #requests == 0 then
    error("no requests in " .. file)
  end
  counter = ((id or 0) * 37) % #requests
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format(
    "BENCH p50=%d p90=%d p95=%d p99=%d min=%d max=%d mean=%.0f\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.min, latency.max, latency.mean))
end
