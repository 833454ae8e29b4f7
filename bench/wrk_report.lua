-- wrk script for the Seatwise benchmarks: extra headers from the environment, and a
-- one-line machine-readable summary (latencies in milliseconds).
wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
wrk.headers["User-Agent"] = "seatwise-bench"
local hx = os.getenv("BENCH_HX")
if hx and hx ~= "" then wrk.headers["HX-Request"] = "true" end
local etag = os.getenv("BENCH_ETAG")
if etag and etag ~= "" then wrk.headers["If-None-Match"] = etag end

done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f p50=%.2f p95=%.2f p99=%.2f errors=%d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
end
