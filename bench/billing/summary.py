"""Summarises bench/billing/run.py's JSON lines: one row per engine and
size, and how the run's time grew between sizes of one engine."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"bench": "billing"')]
RUN_TARGET_S, NOOP_TARGET_S, USAGE_TARGET, LAGO = 20.0, 3.0, 50_000, 10_000
MILLION_TARGET_S = {"postgres": 60.0, "sqlite": 90.0}
RSS_TARGET_MB = 500


def ok(flag):
    return "met" if flag else "MISSED"


def run_target(r):
    n = r["subscriptions"]
    if n <= 100_000:
        return RUN_TARGET_S * n / 100_000
    return max(RUN_TARGET_S, MILLION_TARGET_S[r["engine"]] * n / 1_000_000)


def usage_cell(r):
    if "records_per_s" not in r:
        return "(not run)", ""
    return f"{r['records_per_s']:,}", f"{r['batch_p50_ms']}/{r['batch_p99_ms']}"


print("| engine | due subs | run s | invoices/s | run peak RSS MB | floor s | run/floor | no-op s "
      "| copies after the run s | usage records/s | batch p50/p99 ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for r in rows:
    rate, batch = usage_cell(r)
    print(f"| {r['engine']} | {r['subscriptions']:,} | {r['run_s']:.2f} | {r['invoices_per_s']:,} "
          f"| {r.get('run_peak_rss_mb', '')} | {r['floor_s']:.2f} | x{r['run_s'] / r['floor_s']:.1f} "
          f"| {r['noop_s']:.2f} | {r.get('copies_s', 0):.2f} | {rate} | {batch} |")
print()
for r in rows:
    target = run_target(r)
    line = (f"{r['engine']} {r['subscriptions']:,}: run <= {target:g} s {ok(r['run_s'] <= target)}; "
            f"peak RSS <= {RSS_TARGET_MB} MB "
            f"{ok(r['run_peak_rss_mb'] <= RSS_TARGET_MB) if 'run_peak_rss_mb' in r else '(not measured)'}; "
            f"no-op <= {NOOP_TARGET_S:g} s {ok(r['noop_s'] <= NOOP_TARGET_S)}")
    if "records_per_s" in r:
        if r["engine"] == "postgres":
            line += f"; usage >= {USAGE_TARGET:,}/s {ok(r['records_per_s'] >= USAGE_TARGET)}"
        line += (f"; usage = x{r['records_per_s'] / LAGO:.1f} Lago's published {LAGO:,} events/s "
                 f"({r['usage_records']:,} records, {r['usage_clients']} clients, "
                 f"batches of {r['usage_batch']:,})")
    print(line)
print()
for engine in ("sqlite", "postgres"):
    sizes = sorted((r for r in rows if r["engine"] == engine), key=lambda r: r["subscriptions"])
    for small, big in zip(sizes, sizes[1:]):
        size_x = big["subscriptions"] / small["subscriptions"]
        time_x = big["run_s"] / small["run_s"]
        print(f"{engine}: {small['subscriptions']:,} -> {big['subscriptions']:,} subscriptions "
              f"(x{size_x:g}): run {small['run_s']:.2f} s -> {big['run_s']:.2f} s (x{time_x:.2f}; "
              f"linear is x{size_x:g}), per invoice {small['run_s'] / small['subscriptions'] * 1e6:.0f} "
              f"-> {big['run_s'] / big['subscriptions'] * 1e6:.0f} µs")
