"""Summarises bench/queue.sh's JSON lines: figures, ratios, targets."""
import json
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
command = sys.argv[2]


def pick(**kv):
    return [r for r in rows if all(r.get(k) == v for k, v in kv.items())]


gw_default = pick(system="graphile-worker", mode="backlog", config="default")[0]
gw_fast = pick(system="graphile-worker", mode="backlog", config="fast")[0]
mp_pg = pick(system="mpanel", engine="postgres", mode="backlog")
mp_sq = pick(system="mpanel", engine="sqlite", mode="backlog")

print(f"command: {command}")
print("\nbacklog (jobs/s, higher is better)")
print(f"  graphile-worker default          {gw_default['jobs_per_sec']:>9,.0f}")
print(f"  graphile-worker local queue+batch {gw_fast['jobs_per_sec']:>8,.0f}")
for r in mp_pg:
    print(f"  mPanel PostgreSQL round {r['round']}        {r['jobs_per_sec']:>9,.0f}"
          f"   x{r['jobs_per_sec'] / gw_fast['jobs_per_sec']:.2f} fast, x{r['jobs_per_sec'] / gw_default['jobs_per_sec']:.1f} default")
for r in mp_sq:
    print(f"  mPanel SQLite round {r['round']}            {r['jobs_per_sec']:>9,.0f}")

print("\nlive (16 clients, one job per transaction): jobs/s, pickup p50 / p99 ms")
for r in pick(mode="live"):
    who = r["system"] + (" " + r["engine"] if "engine" in r else " " + r.get("config", ""))
    load = "low load (20 ms between enqueues)" if r["interval_ms"] else "under load (back to back)"
    print(f"  {who:<26} {load:<34} {r['jobs_per_sec']:>7,.0f}  {r['pickup_p50_ms']:>7.2f} / {r['pickup_p99_ms']:>7.2f}")

worst_pg = min(r["jobs_per_sec"] for r in mp_pg)
low_pg = pick(system="mpanel", engine="postgres", mode="live", interval_ms=20)[0]
low_sq = pick(system="mpanel", engine="sqlite", mode="live", interval_ms=20)[0]
busy_pg = pick(system="mpanel", engine="postgres", mode="live", interval_ms=0)[0]
busy_sq = pick(system="mpanel", engine="sqlite", mode="live", interval_ms=0)[0]
worst_sq = min(r["jobs_per_sec"] for r in mp_sq)
checks = [
    ("backlog >= graphile-worker's fastest (every round), PostgreSQL", worst_pg >= gw_fast["jobs_per_sec"]),
    ("backlog >= graphile-worker's fastest (every round), SQLite", worst_sq >= gw_fast["jobs_per_sec"]),
    ("backlog >= 5x graphile-worker's default (every round), PostgreSQL", worst_pg >= 5 * gw_default["jobs_per_sec"]),
    ("live pickup p99 < 20 ms at low load, PostgreSQL", low_pg["pickup_p99_ms"] < 20),
    ("live pickup p99 < 20 ms at low load, SQLite", low_sq["pickup_p99_ms"] < 20),
    # Issue 19: the queue under load (16 clients back to back).
    ("live pickup p99 < 15 ms under load, PostgreSQL", busy_pg["pickup_p99_ms"] < 15),
    ("live pickup p99 < 100 ms under load, SQLite", busy_sq["pickup_p99_ms"] < 100),
    ("backlog holds over 3 rounds (last >= 80% of first), PostgreSQL",
     mp_pg[-1]["jobs_per_sec"] >= 0.8 * mp_pg[0]["jobs_per_sec"]),
]
print("\ntargets")
for name, ok in checks:
    print(f"  [{'met' if ok else 'MISSED'}] {name}")
