-- Prints wrk's exact totals as one JSON line (its own summary rounds the byte count).
-- bench.py reads the line that starts with "BENCH_JSON ".
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "bytes": %d, "duration_us": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
      summary.requests, summary.bytes, summary.duration,
      e.connect, e.read, e.write, e.status, e.timeout))
end
