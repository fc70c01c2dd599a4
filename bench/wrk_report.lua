-- wrk script for bench/app_wrk.py: one fixed request (method and optional JSON body from the script
-- arguments) and a one-line JSON summary at the end, so the driver needs no parsing of wrk's text.
--   wrk ... -s wrk_report.lua URL -- POST '{"tamanho": 12}'
local req

function init(args)
  local method = args[1] or "GET"
  local body = args[2]
  if body then
    req = wrk.format(method, nil, { ["Content-Type"] = "application/json" }, body)
  else
    req = wrk.format(method)
  end
end

function request()
  return req
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
