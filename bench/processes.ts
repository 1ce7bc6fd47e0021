// What the bench's suites share for the processes they run: helper node scripts, free ports, /proc
// readings, timed vm commands, and servers started in the background (a registry, an S3 emulator).
import { closeSync, openSync, readFileSync } from "node:fs";
import { spawn, spawnSync, type SpawnSyncOptions } from "node:child_process";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { run } from "./lib.ts";

const REPO = resolve(import.meta.dirname, "..");

/** Blocks for `ms` (the bench is synchronous). */
export const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Node run as a helper process, in the repository for its modules. */
export function node(script: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): string {
  return run(process.execPath, ["-e", script, ...args], { cwd: REPO, env });
}

export function freePort(): number {
  return Number(
    node(
      "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });",
    ),
  );
}

/** The process exists and has not exited (a child the blocked event loop has not reaped is a zombie). */
export function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

/** A process's peak resident set so far, in KiB (VmHWM), 0 when it is gone. */
export function peakRssKb(pid: number): number {
  try {
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

const CLOCK_TICKS = Number(run("getconf", ["CLK_TCK"])) || 100;

/** CPU seconds (user + system) a process has used so far, 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Wall time, peak RSS (KiB, from GNU time) and the standard output of one vm command. */
export function vmTimed(
  vm: string,
  args: string[],
  options: SpawnSyncOptions,
): { seconds: number; rssKb: number; stdout: string } {
  const start = performance.now();
  const res = spawnSync("/usr/bin/time", ["-f", "%M", vm, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    ...options,
  });
  const seconds = (performance.now() - start) / 1000;
  if (res.status !== 0) throw new Error(`vm ${args.join(" ")} failed: ${String(res.stderr).slice(-2000)}`);
  const lines = String(res.stderr).trim().split("\n");
  return { seconds, rssKb: Number(lines[lines.length - 1]), stdout: String(res.stdout) };
}

export interface ServerCommand {
  /** For messages: "docker-registry". */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  logFile: string;
  /** Ready once a request to this URL answers `status`. */
  ready: { url: string; method: "GET" | "HEAD"; status: number };
}

/**
 * A server in a child process, its output in a log file (a pipe would fill while the bench blocks in
 * spawnSync), waited for until it answers; stopped with SIGTERM, then SIGKILL, and on the bench's exit.
 */
export class ChildServer {
  private readonly spec: ServerCommand;
  private pid: number | undefined;
  private readonly onExit = () => this.kill();

  constructor(spec: ServerCommand) {
    this.spec = spec;
    process.on("exit", this.onExit);
  }

  /** Its process, while it runs. */
  get runningPid(): number | undefined {
    return this.pid;
  }

  start(): void {
    const { name, command, args, env, logFile, ready } = this.spec;
    const fd = openSync(logFile, "a");
    try {
      const child = spawn(command, args, { stdio: ["ignore", fd, fd], ...(env ? { env } : {}) });
      this.pid = child.pid;
      child.unref();
    } finally {
      closeSync(fd);
    }
    const pid = this.pid;
    if (pid === undefined) throw new Error(`bench: could not start ${name} (is it installed?)`);
    const answered = spawnSync(process.execPath, [
      "-e",
      `(async () => {
        for (let i = 0; i < 300; i++) {
          try { if ((await fetch(${JSON.stringify(ready.url)}, { method: ${JSON.stringify(ready.method)} })).status === ${ready.status}) process.exit(0); } catch {}
          await new Promise((r) => setTimeout(r, 50));
        }
        process.exit(1);
      })()`,
    ]);
    if (answered.status !== 0 || !alive(pid))
      throw new Error(
        `bench: ${name} did not answer at ${ready.url}: ${readFileSync(logFile, "utf8").slice(-2000)}`,
      );
  }

  private kill(): void {
    if (this.pid === undefined) return;
    try {
      process.kill(this.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }

  stop(): void {
    const pid = this.pid;
    if (pid === undefined) return;
    this.kill();
    for (let i = 0; i < 100 && alive(pid); i++) sleep(50);
    if (alive(pid)) {
      process.kill(pid, "SIGKILL");
      for (let i = 0; i < 100 && alive(pid); i++) sleep(50);
    }
    this.pid = undefined;
  }

  dispose(): void {
    this.stop();
    process.off("exit", this.onExit);
  }
}

/**
 * The second engine (Docker 26, containerd store) imports and pulls go to, so the image's layers are truly
 * absent there before each round, as on a new machine; and whether it answers.
 */
export const SECOND_ENGINE = "unix:///var/run/vm-docker2.sock";

export function secondEngineUp(): boolean {
  return spawnSync("docker", ["-H", SECOND_ENGINE, "version"], { stdio: "ignore" }).status === 0;
}

/** Removes every image carrying the bench's label from an engine (a few passes: children go first). */
export function removeLabelledImages(host: string, label: string): void {
  for (let pass = 0; pass < 3; pass++) {
    const ids = run("docker", ["-H", host, "images", "-aq", "--filter", `label=${label}`])
      .split("\n")
      .filter(Boolean);
    if (ids.length === 0) break;
    spawnSync("docker", ["-H", host, "rmi", "-f", ...new Set(ids)]);
  }
}
