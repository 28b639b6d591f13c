// Node's Verrou (@verrou/core, pinned in package.json) running the same
// workloads as verrou-bench, so that both sides meet the same servers in the
// same run. Driven by verrou-bench: `node peer.mjs <store>`, then one JSON
// request per stdin line, one JSON answer per stdout line.
//
// Requests:  {"workload": "sequential" | "concurrent" | "contended" | "handoff", "secs": 1.0, "round": 3}
// Answers:   {"ops": n, "secs": s, "p50_us": x, "p99_us": y, "cdf_us": [...], ...},
//            {"na": "why this workload cannot run here"} or {"error": "..."}
//
// Redis is found where verrou-bench finds it: VERROU_REDIS_URL (verrou-bench
// passes it on, the testkit's default when unset).
//
// The workloads mirror bench/src/workloads.rs; keep the two in step.

import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { Verrou } from '@verrou/core'

const CONCURRENT_TASKS = 64
const CONTENDED_TASKS = 16
const HOLD_MS = 1
const TTL_MS = 30_000
const POOL = 16
const HANDOFF_TASKS = 1000
const HANDOFF_GATHER_MS = 250
// The quantiles of a hand-off distribution, as CDF_QUANTILES in
// bench/src/sample.rs: every percent, then the tail.
const CDF_QUANTILES = [...Array(100).keys()].map((i) => i / 100).concat([0.995, 0.999, 1])

// Workloads Node's Verrou cannot run on a store, and why; answered as
// {"na": why}, shown as "n/a" in the report.
const NOT_APPLICABLE = {
  memory: {
    contended:
      "Verrou's memory driver keeps the first owner of a key, so the next holder's release() throws E_LOCK_NOT_OWNED",
    handoff:
      "Verrou's memory driver keeps the first owner of a key, so the next holder's release() throws E_LOCK_NOT_OWNED",
  },
}

const storeName = process.argv[2]
const run = Math.random().toString(36).slice(2, 10)

async function makeDriver(name) {
  switch (name) {
    case 'memory': {
      const { memoryStore } = await import('@verrou/core/drivers/memory')
      return { driver: memoryStore(), close: async () => {} }
    }
    case 'redis': {
      const { default: Redis } = await import('ioredis')
      const { redisStore } = await import('@verrou/core/drivers/redis')
      const url = process.env.VERROU_REDIS_URL || 'redis://127.0.0.1:6379'
      const connection = new Redis(url, { lazyConnect: true })
      await connection.connect()
      return { driver: redisStore({ connection }), close: () => connection.quit() }
    }
    case 'postgres':
    case 'mysql': {
      const { default: knex } = await import('knex')
      const { knexStore } = await import('@verrou/core/drivers/knex')
      const connection =
        name === 'postgres'
          ? knex({
              client: 'pg',
              connection: { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' },
              pool: { min: 1, max: POOL },
            })
          : knex({
              client: 'mysql2',
              connection: { host: '127.0.0.1', port: 3306, user: 'root', password: '', database: 'test' },
              pool: { min: 1, max: POOL },
            })
      await connection.raw('SELECT 1')
      const tableName = 'verrou_bench_node'
      return { driver: knexStore({ connection, tableName }), close: () => connection.destroy() }
    }
    case 'dynamodb': {
      const dynamo = await import('@aws-sdk/client-dynamodb')
      const { dynamodbStore } = await import('@verrou/core/drivers/dynamodb')
      const connection = new dynamo.DynamoDBClient({
        endpoint: process.env.VERROU_DYNAMODB_ENDPOINT || 'http://127.0.0.1:8000',
        region: 'us-east-1',
        credentials: { accessKeyId: 'verrou-bench', secretAccessKey: 'verrou-bench-secret' },
      })
      const name = 'verrou_bench_node'
      const driver = dynamodbStore({ connection, table: { name } })
      // Verrou creates the table without waiting for it to become ACTIVE.
      for (let i = 0; ; i++) {
        try {
          const { Table } = await connection.send(new dynamo.DescribeTableCommand({ TableName: name }))
          if (Table?.TableStatus === 'ACTIVE') break
        } catch (error) {
          if (!(error instanceof dynamo.ResourceNotFoundException) || i > 100) throw error
          if (i === 0) driver.factory() // creates the table
        }
        await sleep(100)
      }
      return { driver, close: async () => connection.destroy() }
    }
    default:
      throw new Error(`Node's Verrou has no driver wired up for \`${name}\` in bench/node/peer.mjs`)
  }
}

const nowNs = () => process.hrtime.bigint()

function percentile(sorted, q) {
  if (sorted.length === 0) return 0
  const i = Math.min(sorted.length - 1, Math.floor(q * sorted.length))
  return sorted[i]
}

function summary(latenciesNs) {
  const sorted = Float64Array.from(latenciesNs, (n) => Number(n) / 1000).sort()
  return { p50_us: percentile(sorted, 0.5), p99_us: percentile(sorted, 0.99) }
}

function distribution(latenciesNs) {
  const sorted = Float64Array.from(latenciesNs, (n) => Number(n) / 1000).sort()
  return sorted.length === 0 ? [] : CDF_QUANTILES.map((q) => percentile(sorted, q))
}

// One task: acquire + release on distinct keys; only the two calls are timed.
async function sequential(verrou, secs, round) {
  const latencies = []
  let timed = 0n
  const deadline = nowNs() + BigInt(Math.round(secs * 1e9))
  for (let i = 0; nowNs() < deadline; i++) {
    const lock = verrou.createLock(`peer:${run}:seq:${round}:${i}`, TTL_MS)
    const t0 = nowNs()
    if (!(await lock.acquire())) throw new Error('acquire on a free key failed')
    await lock.release()
    const took = nowNs() - t0
    timed += took
    latencies.push(took)
  }
  const timedSecs = Number(timed) / 1e9
  return { ops: latencies.length, secs: timedSecs, ...summary(latencies) }
}

// 64 tasks on distinct keys through one client/pool; wall-clock throughput.
async function concurrent(verrou, secs, round) {
  let ops = 0
  const started = nowNs()
  const deadline = started + BigInt(Math.round(secs * 1e9))
  const task = async (t) => {
    for (let i = 0; nowNs() < deadline; i++) {
      const lock = verrou.createLock(`peer:${run}:conc:${round}:${t}:${i}`, TTL_MS)
      if (!(await lock.acquire())) throw new Error('acquire on a free key failed')
      await lock.release()
      ops++
    }
  }
  await Promise.all(Array.from({ length: CONCURRENT_TASKS }, (_, t) => task(t)))
  return { ops, secs: Number(nowNs() - started) / 1e9 }
}

// `tasks` tasks take turns on `key`, each holding it `holdMs` (0: only a
// yield). After its turn a task re-queues only once another task has taken
// the lock (or the round ends), so every acquisition after the first is a
// hand-off to a different task. Hand-off = from the holder calling release()
// to the next holder's acquire() returning. Retry policy: Verrou's default
// (poll every 250 ms), as users get it. `state.releaseStartedAt` may be set
// by a gate released by the caller.
async function takeTurns(verrou, key, tasks, holdMs, deadline, state) {
  let requeue = []
  const untilDeadline = () => Math.max(0, Number(deadline - nowNs()) / 1e6)
  const task = async () => {
    const lock = verrou.createLock(key, TTL_MS)
    for (;;) {
      const left = untilDeadline()
      if (left <= 0) return
      if (!(await lock.acquire({ retry: { timeout: left } }))) return
      const at = nowNs()
      if (at > deadline) {
        await lock.release()
        return
      }
      state.acquisitions++
      if (state.releaseStartedAt !== null) state.handoffs.push(at - state.releaseStartedAt)
      const waiting = requeue
      requeue = []
      for (const wake of waiting) wake()
      if (holdMs > 0) await sleep(holdMs)
      else await new Promise((resolve) => setImmediate(resolve))
      const someoneElse = new Promise((resolve) => requeue.push(resolve))
      state.releaseStartedAt = nowNs()
      await lock.release()
      await Promise.race([someoneElse, sleep(untilDeadline())])
    }
  }
  await Promise.all(Array.from({ length: tasks }, () => task()))
}

// 16 tasks fight for one key, each holding it HOLD_MS (see takeTurns).
async function contended(verrou, secs, round) {
  const key = `peer:${run}:contended:${round}`
  const state = { acquisitions: 0, handoffs: [], releaseStartedAt: null }
  const started = nowNs()
  const deadline = started + BigInt(Math.round(secs * 1e9))
  await takeTurns(verrou, key, CONTENDED_TASKS, HOLD_MS, deadline, state)
  const s = summary(state.handoffs)
  return {
    ops: state.acquisitions,
    secs: Number(deadline - started) / 1e9,
    handoffs: state.handoffs.length,
    p50_us: s.p50_us,
    p99_us: s.p99_us,
  }
}

// 1000 tasks wait on one key with the default retry, each holding it for no
// time (see takeTurns). A gate holds the key while they gather (250 ms, one
// poll interval); the window opens when it is released.
async function handoff(verrou, secs, round) {
  const key = `peer:${run}:handoff:${round}`
  const state = { acquisitions: 0, handoffs: [], releaseStartedAt: null }
  const gate = verrou.createLock(key, TTL_MS)
  if (!(await gate.acquire())) throw new Error('the gate could not take a free key')
  const opens = nowNs() + BigInt(HANDOFF_GATHER_MS * 1e6)
  const deadline = opens + BigInt(Math.round(secs * 1e9))
  const waiters = takeTurns(verrou, key, HANDOFF_TASKS, 0, deadline, state)
  await sleep(HANDOFF_GATHER_MS)
  state.releaseStartedAt = nowNs()
  await gate.release()
  await waiters
  const s = summary(state.handoffs)
  return {
    ops: state.acquisitions,
    secs: Number(deadline - opens) / 1e9,
    handoffs: state.handoffs.length,
    p50_us: s.p50_us,
    p99_us: s.p99_us,
    cdf_us: distribution(state.handoffs),
  }
}

const workloads = { sequential, concurrent, contended, handoff }

async function main() {
  let store
  try {
    store = await makeDriver(storeName)
  } catch (error) {
    console.log(JSON.stringify({ error: String(error?.message ?? error) }))
    process.exit(1)
  }
  const verrou = new Verrou({ default: storeName, stores: { [storeName]: { driver: store.driver } } })
  console.log(JSON.stringify({ ready: true }))
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    if (!line.trim()) continue
    let answer
    try {
      const request = JSON.parse(line)
      const workload = workloads[request.workload]
      if (!workload) throw new Error(`unknown workload ${request.workload}`)
      const na = NOT_APPLICABLE[storeName]?.[request.workload]
      answer = na ? { na } : await workload(verrou, request.secs, request.round)
    } catch (error) {
      answer = { error: String(error?.stack ?? error) }
    }
    console.log(JSON.stringify(answer))
  }
  await store.close()
}

main()
