#!/usr/bin/env node
// Benchmark harness for graphile-worker 0.17 (see README.md next to this file).
//
//   node run.mjs --db <url> --mode backlog --n 100000 --config default|fast
//   node run.mjs --db <url> --mode live --clients 16 --per-client 500 \
//                [--interval-ms 0] --config default|fast
//
// Prints exactly one JSON line on stdout; everything else (graphile-worker's
// own log, diagnostics) goes to stderr. Exits non-zero on any error.

import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { Logger, run, runMigrations } from "graphile-worker";

const SCHEMA = "graphile_worker";
const TASK = "noop";
const BULK_CHUNK = 10_000;

// ---------------------------------------------------------------- options

const USAGE = `usage:
  node run.mjs --db <postgres url> --mode backlog --n <jobs> --config default|fast
  node run.mjs --db <postgres url> --mode live --clients <k> --per-client <m>
               [--interval-ms <ms>] --config default|fast
optional: --concurrency <n> (override concurrentJobs), --timeout-s <s> (default 600),
          --verbose (graphile-worker info/debug log on stderr)`;

function fail(message) {
  process.stderr.write(`run.mjs: error: ${message}\n`);
  process.exit(2);
}

function parseCli() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        db: { type: "string" },
        mode: { type: "string" },
        config: { type: "string", default: "default" },
        n: { type: "string" },
        clients: { type: "string" },
        "per-client": { type: "string" },
        "interval-ms": { type: "string", default: "0" },
        concurrency: { type: "string" },
        "timeout-s": { type: "string", default: "600" },
        verbose: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    fail(`${e.message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (name, min) => {
    const raw = values[name];
    if (raw === undefined) fail(`--${name} is required for --mode ${values.mode}\n${USAGE}`);
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) fail(`--${name} must be an integer >= ${min}, got '${raw}'`);
    return v;
  };
  if (!values.db) fail(`--db is required\n${USAGE}`);
  if (!["backlog", "live"].includes(values.mode)) fail(`--mode must be backlog or live\n${USAGE}`);
  if (!["default", "fast"].includes(values.config)) fail(`--config must be default or fast\n${USAGE}`);
  const opts = {
    db: values.db,
    mode: values.mode,
    config: values.config,
    verbose: values.verbose,
    timeoutMs: int("timeout-s", 1) * 1000,
    concurrency: values.concurrency === undefined ? undefined : int("concurrency", 1),
  };
  if (opts.mode === "backlog") {
    opts.n = int("n", 1);
  } else {
    opts.clients = int("clients", 1);
    opts.perClient = int("per-client", 1);
    opts.intervalMs = int("interval-ms", 0);
  }
  return opts;
}

// ---------------------------------------------------------------- worker configuration

// `default`: graphile-worker 0.17's defaults, i.e. nothing set. From
// dist/config.js / dist/index.d.ts: concurrentJobs 1, maxPoolSize 10,
// pollInterval 2000 (new jobs are still picked up at once through
// LISTEN/NOTIFY), preparedStatements true, no local queue
// (localQueue.size -1), no batched completion (completeJobBatchDelay -1,
// failJobBatchDelay -1).
//
// `fast`: the configuration graphile-worker's own performance page
// (https://worker.graphile.org/docs/performance, "Quick stats") uses for its
// headline figures:
//   concurrentJobs: 24, maxPoolSize: 25, localQueue: { size: 500 },
//   completeJobBatchDelay: 0, failJobBatchDelay: 0
// concurrentJobs 24 / maxPoolSize 25 are copied from there (the d.ts also
// recommends maxPoolSize >= concurrentJobs + 2 in general, but the page's
// benchmark uses 25 and we follow the page). pollInterval is not part of
// that configuration, so it keeps its default. In 0.17 localQueue and the
// batch delays exist only as preset options (`preset.worker.*`), not as
// legacy top-level RunnerOptions, so everything is given via `preset`.
function presetFor(config, concurrencyOverride) {
  const worker =
    config === "fast"
      ? {
          concurrentJobs: 24,
          maxPoolSize: 25,
          localQueue: { size: 500 },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        }
      : {};
  if (concurrencyOverride !== undefined) {
    worker.concurrentJobs = concurrencyOverride;
    worker.maxPoolSize = Math.max(worker.maxPoolSize ?? 10, concurrencyOverride + 2);
  }
  return { worker };
}

function makeLogger(verbose) {
  return new Logger((scope) => (level, message) => {
    if (!verbose && level !== "error" && level !== "warning") return;
    const where = scope && scope.label ? `[${scope.label}] ` : "";
    process.stderr.write(`graphile-worker ${level}: ${where}${message}\n`);
  });
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Like sleep, but does not keep the process alive (for races against a deadline).
const unrefSleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

function percentile(sorted, p) {
  // Nearest-rank percentile on an ascending array.
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

const round = (x, digits) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

async function resetSchema(opts, logger) {
  const client = new pg.Client({ connectionString: opts.db });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${SCHEMA} cascade`);
  } finally {
    await client.end();
  }
  await runMigrations({ connectionString: opts.db, schema: SCHEMA, logger });
}

/**
 * Tracks job completions as reported by the worker, and lets the caller wait
 * until all `total` jobs are completed *in the database* (graphile-worker
 * deletes a job row when it completes it; with completeJobBatchDelay the
 * delete happens after the `job:complete` event, so we confirm on the table).
 */
function makeCompletionTracker(events, total, monitorPool, timeoutMs) {
  let completed = 0;
  let failure = null;
  let wake = null;
  const poke = () => {
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  events.on("job:complete", ({ error }) => {
    if (error) {
      failure ??= new Error(`a job failed: ${error?.message ?? error}`);
    } else {
      completed += 1;
    }
    if (completed >= total || failure) poke();
  });
  events.on("job:failed", ({ job, error }) => {
    failure ??= new Error(`job ${job?.id} failed: ${error?.message ?? error}`);
    poke();
  });
  events.on("pool:fatalError", ({ error }) => {
    failure ??= new Error(`worker pool fatal error: ${error?.message ?? error}`);
    poke();
  });
  events.on("worker:fatalError", ({ error }) => {
    failure ??= new Error(`worker fatal error: ${error?.message ?? error}`);
    poke();
  });

  return {
    get completed() {
      return completed;
    },
    fail(e) {
      failure ??= e;
      poke();
    },
    async waitAllDone(deadline) {
      while (completed < total && !failure) {
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new Error(
            `timed out after ${timeoutMs / 1000}s with ${completed}/${total} jobs completed`,
          );
        }
        let timer;
        await new Promise((resolve) => {
          wake = resolve;
          timer = setTimeout(poke, Math.min(left, 1000));
        });
        clearTimeout(timer);
      }
      if (failure) throw failure;
      // Every handler has returned; wait for the (possibly batched)
      // completions to be committed, i.e. for the jobs table to be empty.
      for (;;) {
        const { rows } = await monitorPool.query(
          `select exists (select 1 from ${SCHEMA}._private_jobs) as pending`,
        );
        if (!rows[0].pending) return;
        if (failure) throw failure;
        if (performance.now() > deadline) {
          throw new Error(`timed out waiting for the last completions to reach the database`);
        }
        await sleep(1);
      }
    },
  };
}

// ---------------------------------------------------------------- backlog mode

async function backlog(opts, cleanup) {
  const logger = makeLogger(opts.verbose);
  await resetSchema(opts, logger);

  const monitorPool = new pg.Pool({ connectionString: opts.db, max: 2 });
  cleanup.push(() => monitorPool.end());

  // Bulk enqueue with graphile-worker's own add_jobs(job_spec[]) in chunks,
  // building the specs server-side so no large JSON has to be shipped.
  const enqueueStart = performance.now();
  for (let from = 1; from <= opts.n; from += BULK_CHUNK) {
    const to = Math.min(opts.n, from + BULK_CHUNK - 1);
    await monitorPool.query(
      `select count(*) from ${SCHEMA}.add_jobs(array(
         select row($3::text, json_build_object('seq', i), null::text, null::timestamptz,
                    null::smallint, null::text, null::smallint, null::text[])::${SCHEMA}.job_spec
         from generate_series($1::int, $2::int) as i
       ))`,
      [from, to, TASK],
    );
  }
  const { rows } = await monitorPool.query(`select count(*)::int as n from ${SCHEMA}._private_jobs`);
  if (rows[0].n !== opts.n) throw new Error(`expected ${opts.n} queued jobs, found ${rows[0].n}`);
  process.stderr.write(
    `enqueued ${opts.n} jobs in ${((performance.now() - enqueueStart) / 1000).toFixed(2)}s\n`,
  );
  // Give the planner fresh statistics for the freshly filled table (as
  // autovacuum would on a long-running database) before the clock starts.
  await monitorPool.query(`analyze ${SCHEMA}._private_jobs`);

  let handled = 0;
  const taskList = {
    [TASK]: async () => {
      handled += 1;
    },
  };

  const events = new (await import("node:events")).EventEmitter();
  const tracker = makeCompletionTracker(events, opts.n, monitorPool, opts.timeoutMs);

  const t0 = performance.now();
  const deadline = t0 + opts.timeoutMs;
  const runner = await run({
    connectionString: opts.db,
    schema: SCHEMA,
    taskList,
    parsedCronItems: [],
    noHandleSignals: true,
    logger,
    events,
    preset: presetFor(opts.config, opts.concurrency),
  });
  cleanup.push(() => runner.stop());
  runner.promise.catch((e) => tracker.fail(e));

  await tracker.waitAllDone(deadline);
  const seconds = (performance.now() - t0) / 1000;
  if (handled !== opts.n) {
    throw new Error(`task handler ran ${handled} times for ${opts.n} jobs`);
  }
  return {
    system: "graphile-worker",
    mode: "backlog",
    config: opts.config,
    n: opts.n,
    seconds: round(seconds, 3),
    jobs_per_sec: Math.round(opts.n / seconds),
  };
}

// ---------------------------------------------------------------- live mode

async function live(opts, cleanup) {
  const logger = makeLogger(opts.verbose);
  await resetSchema(opts, logger);
  const total = opts.clients * opts.perClient;

  const monitorPool = new pg.Pool({ connectionString: opts.db, max: 2 });
  cleanup.push(() => monitorPool.end());

  const committedAt = new Float64Array(total).fill(NaN);
  const startedAt = new Float64Array(total).fill(NaN);
  let handled = 0;
  let duplicates = 0;
  const taskList = {
    [TASK]: async (payload) => {
      const now = performance.now();
      const seq = payload.seq;
      if (!Number.isNaN(startedAt[seq])) duplicates += 1;
      startedAt[seq] = now;
      handled += 1;
    },
  };

  const events = new (await import("node:events")).EventEmitter();
  const tracker = makeCompletionTracker(events, total, monitorPool, opts.timeoutMs);
  const listening = new Promise((resolve) => events.once("pool:listen:success", resolve));

  const runner = await run({
    connectionString: opts.db,
    schema: SCHEMA,
    taskList,
    parsedCronItems: [],
    noHandleSignals: true,
    logger,
    events,
    preset: presetFor(opts.config, opts.concurrency),
  });
  cleanup.push(() => runner.stop());
  runner.promise.catch((e) => tracker.fail(e));
  // Worker is up and LISTENing for new jobs before any client starts.
  await Promise.race([
    listening,
    unrefSleep(30_000).then(() => {
      throw new Error("worker did not start listening within 30s");
    }),
  ]);

  const clients = [];
  for (let c = 0; c < opts.clients; c++) {
    const client = new pg.Client({ connectionString: opts.db });
    await client.connect();
    clients.push(client);
    cleanup.push(() => client.end());
  }

  const addJobSql = `select id from ${SCHEMA}.add_job($1::text, $2::json)`;
  async function clientLoop(client, c) {
    for (let j = 0; j < opts.perClient; j++) {
      const seq = c * opts.perClient + j;
      await client.query("begin");
      await client.query({ name: "add_job", text: addJobSql, values: [TASK, JSON.stringify({ seq })] });
      await client.query("commit");
      committedAt[seq] = performance.now();
      if (opts.intervalMs > 0) await sleep(opts.intervalMs);
    }
  }

  const t0 = performance.now();
  const deadline = t0 + opts.timeoutMs;
  const producing = Promise.all(clients.map((client, c) => clientLoop(client, c)));
  producing.catch((e) => tracker.fail(e));
  await producing;
  await tracker.waitAllDone(deadline);
  const seconds = (performance.now() - t0) / 1000;

  if (handled !== total || duplicates !== 0) {
    throw new Error(`task handler ran ${handled} times (${duplicates} duplicates) for ${total} jobs`);
  }
  const latencies = new Float64Array(total);
  let early = 0;
  let mostEarly = 0;
  for (let i = 0; i < total; i++) {
    let l = startedAt[i] - committedAt[i];
    if (Number.isNaN(l)) throw new Error(`job ${i} has no commit or start time`);
    // The worker can start a job before this process has read the COMMIT
    // reply on the client's socket (both share one event loop); count those
    // as zero latency.
    if (l < 0) {
      early += 1;
      mostEarly = Math.min(mostEarly, l);
      l = 0;
    }
    latencies[i] = l;
  }
  latencies.sort();
  if (early > 0) {
    process.stderr.write(
      `${early} job(s) started before their COMMIT reply was read ` +
        `(by up to ${(-mostEarly).toFixed(2)} ms; counted as 0 ms)\n`,
    );
  }
  const mean = latencies.reduce((a, b) => a + b, 0) / total;
  process.stderr.write(
    `pickup latency ms: mean ${mean.toFixed(2)}, p50 ${percentile(latencies, 50).toFixed(2)}, ` +
      `p90 ${percentile(latencies, 90).toFixed(2)}, p99 ${percentile(latencies, 99).toFixed(2)}, ` +
      `max ${latencies[total - 1].toFixed(2)}\n`,
  );

  return {
    system: "graphile-worker",
    mode: "live",
    config: opts.config,
    clients: opts.clients,
    jobs: total,
    interval_ms: opts.intervalMs,
    seconds: round(seconds, 3),
    jobs_per_sec: Math.round(total / seconds),
    pickup_p50_ms: round(percentile(latencies, 50), 3),
    pickup_p99_ms: round(percentile(latencies, 99), 3),
  };
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseCli();
  const cleanup = [];
  let result;
  let error = null;
  try {
    result = opts.mode === "backlog" ? await backlog(opts, cleanup) : await live(opts, cleanup);
  } catch (e) {
    error = e;
  }
  // Undo in reverse order of creation (clients, then the worker, then pools).
  for (const step of cleanup.reverse()) {
    const ts = performance.now();
    try {
      await Promise.race([step(), unrefSleep(15_000)]);
      if (opts.verbose) process.stderr.write(`cleanup step took ${(performance.now()-ts).toFixed(0)} ms\n`);
    } catch (e) {
      error ??= e;
    }
  }
  if (error) {
    process.stderr.write(`run.mjs: error: ${error?.stack ?? error}\n`);
    process.exitCode = 1;
    // Don't hang on anything left behind after a failure.
    setTimeout(() => process.exit(1), 2000).unref();
    return;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main();
