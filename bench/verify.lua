-- wrk script: POST a JSON-RPC body with a fresh id per request, verify every answer.
--
-- Environment (set by bench/load.py):
--   BENCH_BODY   the body, with @N@ where the request number goes (the id and the echo argument)
--   BENCH_ID_BASE added to the request number: ids stay unique across the runs of one bench,
--                as JSON-RPC wants within a session (a proxy routes answers by id)
--   BENCH_CHECK  echo     200, and the body's "id" equals the number in its "echo N" result
--                list     200, the id is there, and exactly BENCH_TOOLS tools ("inputSchema") came back
--                session  200, the id is there, a protocolVersion, and an Mcp-Session-Id header
-- A response that fails its check counts as an error ("bad"), whatever its status.
-- Prints one line "BENCH-RESULT {json}" and, if anything failed, "BENCH-SAMPLE <first failure>".

local parts = {}
local template = os.getenv("BENCH_BODY") or ""
local check = os.getenv("BENCH_CHECK") or "echo"
local expected_tools = tonumber(os.getenv("BENCH_TOOLS") or "0")
local id_base = tonumber(os.getenv("BENCH_ID_BASE") or "0")

local start = 1
while true do
  local i, j = string.find(template, "@N@", start, true)
  if not i then
    table.insert(parts, string.sub(template, start))
    break
  end
  table.insert(parts, string.sub(template, start, i - 1))
  start = j + 1
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

n = 0
bad = 0
sample = ""

function init(args)
  wrk.method = "POST"
end

function request()
  n = n + 1
  return wrk.format("POST", nil, nil, table.concat(parts, string.format("%d", id_base + n)))
end

local function count(body, needle)
  local found, at = 0, 1
  while true do
    local i, j = string.find(body, needle, at, true)
    if not i then return found end
    found = found + 1
    at = j + 1
  end
end

local function has_session(headers)
  for name, _ in pairs(headers) do
    if string.lower(name) == "mcp-session-id" then return true end
  end
  return false
end

local function verified(status, headers, body)
  if status ~= 200 then return false end
  local id = string.match(body, '"id"%s*:%s*(%d+)')
  if id == nil then return false end
  if check == "echo" then
    return string.match(body, '"echo (%d+)"') == id
  elseif check == "list" then
    return count(body, '"inputSchema"') == expected_tools
  elseif check == "session" then
    return has_session(headers) and string.find(body, '"protocolVersion"', 1, true) ~= nil
  end
  return false
end

function response(status, headers, body)
  if not verified(status, headers, body) then
    bad = bad + 1
    if sample == "" then
      sample = tostring(status) .. " " .. string.gsub(string.sub(body, 1, 300), "[\r\n]", " ")
    end
  end
end

function done(summary, latency, requests)
  local total_bad, first = 0, ""
  for _, thread in ipairs(threads) do
    total_bad = total_bad + (thread:get("bad") or 0)
    local s = thread:get("sample")
    if first == "" and s ~= nil and s ~= "" then first = s end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_us":%d,"bad":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"mean_us":%.1f,"max_us":%.0f}\n',
    summary.requests, summary.duration, total_bad, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
  if first ~= "" then
    io.write("BENCH-SAMPLE " .. first .. "\n")
  end
end
