"""Summarises bench/billing/run.py's JSON lines: one row per engine."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{"bench": "billing"')]
RUN_TARGET_S, NOOP_TARGET_S, USAGE_TARGET, LAGO = 20.0, 3.0, 50_000, 10_000


def ok(flag):
    return "met" if flag else "MISSED"


print("| engine | due subs | run s | invoices/s | floor s | run/floor | no-op s "
      "| usage records/s | batch p50/p99 ms |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
for r in rows:
    print(f"| {r['engine']} | {r['subscriptions']:,} | {r['run_s']:.2f} | {r['invoices_per_s']:,} "
          f"| {r['floor_s']:.2f} | x{r['run_s'] / r['floor_s']:.1f} | {r['noop_s']:.2f} "
          f"| {r['records_per_s']:,} | {r['batch_p50_ms']}/{r['batch_p99_ms']} |")
print()
for r in rows:
    target = RUN_TARGET_S * r["subscriptions"] / 100_000
    line = (f"{r['engine']}: run <= {target:g} s {ok(r['run_s'] <= target)}; "
            f"no-op <= {NOOP_TARGET_S:g} s {ok(r['noop_s'] <= NOOP_TARGET_S)}; ")
    if r["engine"] == "postgres":
        line += f"usage >= {USAGE_TARGET:,}/s {ok(r['records_per_s'] >= USAGE_TARGET)}; "
    line += (f"usage = x{r['records_per_s'] / LAGO:.1f} Lago's published {LAGO:,} events/s "
             f"({r['usage_records']:,} records, {r['usage_clients']} clients, batches of {r['usage_batch']:,})")
    print(line)
