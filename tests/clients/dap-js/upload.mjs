#!/usr/bin/env node
// Uploads measurements to a DAP-09 leader with the real @divviup/dap npm client (0.9.1,
// DAP-09 with VDAF-08), the way a browser or device using that library would.
//
//   node upload.mjs TASK_JSON LEADER_URL HELPER_URL MEASUREMENTS_JSONL [--concurrency N]
//
// TASK_JSON is divvi's public task file; only task_id, time_precision and vdaf are read
// (the HPKE configs are fetched from the aggregators by the library, as a device would).
// MEASUREMENTS_JSONL holds one JSON value per line: true/false (or 0/1) for count, an
// integer for sum, a bucket index for histogram, an array of integers for sumvec.
//
// On finishing, prints exactly one line to stdout:
//   {"uploaded": <n>, "failed": <n>, "errors": [<first few error messages>]}
// and exits 0 only when failed == 0. Bad arguments or an unusable task file: a message on
// stderr, nothing on stdout, exit 2.

import { readFileSync } from "node:fs";
import { Task } from "@divviup/dap";

const MAX_ERRORS = 5;
const USAGE =
  "usage: node upload.mjs TASK_JSON LEADER_URL HELPER_URL MEASUREMENTS_JSONL [--concurrency N]";

class UsageError extends Error {}

function parseArgs(argv) {
  const positional = [];
  let concurrency = 8;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let value;
    if (arg === "--concurrency") {
      value = argv[++i];
    } else if (arg.startsWith("--concurrency=")) {
      value = arg.slice("--concurrency=".length);
    } else if (arg === "-h" || arg === "--help") {
      throw new UsageError(USAGE);
    } else if (arg.startsWith("--")) {
      throw new UsageError(`unknown option ${arg}\n${USAGE}`);
    } else {
      positional.push(arg);
      continue;
    }
    if (value === undefined || !/^[1-9][0-9]*$/.test(value)) {
      throw new UsageError(`--concurrency needs a positive integer\n${USAGE}`);
    }
    concurrency = Number(value);
  }
  if (positional.length !== 4) throw new UsageError(USAGE);
  const [taskPath, leader, helper, measurementsPath] = positional;
  return { taskPath, leader, helper, measurementsPath, concurrency };
}

// Bits such that max_measurement == 2^bits - 1 (always so for divvi's DAP-09 tasks).
// max_measurement is a u64, so it may not survive JSON.parse as a Number: take its
// digits from the raw text when it is not a safe integer.
function bitsFor(max, rawTaskText) {
  let big;
  if (Number.isSafeInteger(max)) {
    big = BigInt(max);
  } else {
    const m = /"max_measurement"\s*:\s*([0-9]+)/.exec(rawTaskText);
    if (!m) throw new UsageError(`vdaf.max_measurement is not an integer: ${max}`);
    big = BigInt(m[1]);
  }
  const plusOne = big + 1n;
  if (big < 1n || (plusOne & big) !== 0n) {
    throw new UsageError(
      `vdaf.max_measurement ${big} is not 2^bits - 1, which DAP-09 (VDAF-08) needs`,
    );
  }
  return plusOne.toString(2).length - 1;
}

// divvi's vdaf object -> the KnownVdafSpec that @divviup/dap's Task constructor takes.
function vdafSpec(vdaf, rawTaskText) {
  if (!vdaf || typeof vdaf !== "object") throw new UsageError("task file has no vdaf object");
  switch (vdaf.type) {
    case "count":
      return { type: "count" };
    case "sum":
      return { type: "sum", bits: bitsFor(vdaf.max_measurement, rawTaskText) };
    case "histogram":
      return { type: "histogram", length: vdaf.length, chunkLength: vdaf.chunk_length };
    case "sumvec":
    case "sum_vec": {
      const bits = bitsFor(vdaf.max_measurement, rawTaskText);
      // @divviup/prio3 0.8.0 encodes SumVec entries with `(m >> bit) & 1`, a 32-bit JS
      // shift: past 32 bits it silently encodes wrong values (shift count taken mod 32).
      if (bits > 32) {
        throw new UsageError(`sumvec with ${bits} bits: @divviup/prio3 only encodes up to 32 bits correctly`);
      }
      return { type: "sumVec", length: vdaf.length, bits, chunkLength: vdaf.chunk_length };
    }
    default:
      throw new UsageError(`vdaf type ${JSON.stringify(vdaf.type)} is not supported by @divviup/dap`);
  }
}

// One JSONL line -> the measurement type @divviup/dap wants for this VDAF.
function measurementFrom(line, type) {
  const text = line.trim();
  if (type === "sum" && /^[0-9]+$/.test(text)) {
    // Sum takes number | bigint; keep integers past 2^53 exact.
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  const value = JSON.parse(text);
  if (type === "count") {
    // Prio3Count insists on a boolean.
    if (value === true || value === 1) return true;
    if (value === false || value === 0) return false;
    throw new Error(`count measurement must be true/false or 0/1, got ${text}`);
  }
  return value;
}

function describe(err) {
  if (err === null || typeof err !== "object") return String(err);
  // DAPError does not set .name, so prefer the class name
  const name = err.constructor?.name && err.constructor.name !== "Object" ? err.constructor.name : err.name;
  let msg = `${name ?? "Error"}: ${err.message}`;
  // DAPError (problem document from the server)
  if (typeof err.status === "number") msg += ` (status ${err.status})`;
  if (err.clientContext) msg += ` [${err.clientContext}]`;
  if (err.detail) msg += ` detail: ${err.detail}`;
  // fetch's "fetch failed" hides the real reason (ECONNREFUSED, ...) in cause
  if (err.cause) msg += ` (cause: ${err.cause.message ?? err.cause})`;
  return msg;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));

  const rawTask = readFileSync(args.taskPath, "utf8");
  const taskFile = JSON.parse(rawTask);
  if (typeof taskFile.task_id !== "string") throw new UsageError("task file has no task_id");
  if (typeof taskFile.time_precision !== "number") {
    throw new UsageError("task file has no numeric time_precision");
  }
  const spec = vdafSpec(taskFile.vdaf, rawTask);

  const task = new Task({
    ...spec,
    id: taskFile.task_id,
    leader: args.leader,
    helper: args.helper,
    timePrecisionSeconds: taskFile.time_precision,
  });

  const lines = readFileSync(args.measurementsPath, "utf8")
    .split("\n")
    .map((l, i) => ({ line: l, lineNo: i + 1 }))
    .filter(({ line }) => line.trim() !== "");

  let uploaded = 0;
  let failed = 0;
  const errors = [];
  const fail = (msg) => {
    failed++;
    if (errors.length < MAX_ERRORS) errors.push(msg);
  };

  // Fetch both HPKE config lists once before the concurrent uploads (the library caches
  // them on the Task; otherwise each of the first N uploads would fetch them itself).
  // A failure here is not fatal: every upload then tries again and reports its error.
  if (lines.length > 0) {
    try {
      await task.fetchKeyConfiguration();
    } catch (_) {
      // reported by the uploads below
    }
  }

  let next = 0;
  async function worker() {
    while (next < lines.length) {
      const { line, lineNo } = lines[next++];
      let measurement;
      try {
        measurement = measurementFrom(line, spec.type);
      } catch (err) {
        fail(`line ${lineNo}: bad measurement: ${err.message}`);
        continue;
      }
      try {
        await task.sendMeasurement(measurement);
        uploaded++;
      } catch (err) {
        fail(`line ${lineNo}: ${describe(err)}`);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(args.concurrency, lines.length) }, worker));

  process.stdout.write(JSON.stringify({ uploaded, failed, errors }) + "\n");
  process.exitCode = failed === 0 ? 0 : 1;
}

main().catch((err) => {
  process.stderr.write(`upload.mjs: ${err instanceof UsageError ? err.message : describe(err)}\n`);
  process.exitCode = 2;
});
