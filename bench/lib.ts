import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { performance } from "node:perf_hooks";

export interface Sample {
  seconds: number;
}

/** Runs a command to completion and returns its wall time; throws with its stderr when it fails. */
export function timed(cmd: string, args: string[], options: SpawnSyncOptions = {}): number {
  const start = performance.now();
  const res = spawnSync(cmd, args, {
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
  const seconds = (performance.now() - start) / 1000;
  if (res.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${res.status}): ${String(res.stderr).slice(-2000)}`);
  }
  return seconds;
}

export function run(cmd: string, args: string[], options: SpawnSyncOptions = {}): string {
  const res = spawnSync(cmd, args, {
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
  if (res.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${res.status}): ${String(res.stderr).slice(-2000)}`);
  return String(res.stdout).trim();
}

/** A row of the results table: vm against a baseline, with the target it must meet. */
/** What a suite in its own module (registry, s3) is given by bench/run.ts. */
export interface SuiteOptions {
  vm: string;
  /** vm's environment (the bench's private XDG_CONFIG_HOME and labels). */
  env: NodeJS.ProcessEnv;
  label: string;
  /** Rounds of the slow rows (a full transfer of the dev image). */
  rounds: number;
  log: (text: string) => void;
}

/** A peak-RSS row: vm's peak while moving an image of `imageBytes`. */
export interface MemoryRow {
  name: string;
  imageBytes: number;
  peakRssMb: number;
}

export interface Row {
  name: string;
  vm: Stats;
  baseline: Stats;
  baselineName: string;
  /** vm's median must be at most `target` times the baseline's median ... */
  target?: number;
  /** ... plus this many seconds. */
  slack?: number;
}

export interface Stats {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, samples };
}

/**
 * Alternates contenders round by round (A B C, A B C, ...) so drift in the machine's speed hits all of
 * them alike; `before`/`after` run untimed around each sample.
 */
export function alternate(
  rounds: number,
  contenders: {
    name: string;
    before?: () => void;
    measure: () => number;
    after?: () => void;
    /** At most this many rounds (a slow baseline that barely varies). */
    rounds?: number;
  }[],
): Record<string, Stats> {
  const samples: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const c of contenders) {
      if (c.rounds !== undefined && round >= c.rounds) continue;
      c.before?.();
      const seconds = c.measure();
      c.after?.();
      (samples[c.name] ??= []).push(seconds);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]));
}

export function fmt(seconds: number): string {
  return seconds < 1 ? `${(seconds * 1000).toFixed(0)} ms` : `${seconds.toFixed(2)} s`;
}
