import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { docker, dockerTry, type TestEngine } from "./engines.ts";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const VM_BIN = join(REPO, "bin/vm");

/** Everything a test run makes carries this label (through VM_LABELS), so it can be removed afterwards. */
export const TEST_LABEL = "dev.vm.test.run";
export const RUN_ID = `${process.pid}-${Date.now().toString(36)}`;

export interface VmResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface VmOptions {
  cwd: string;
  engine: TestEngine;
  input?: string;
  env?: Record<string, string>;
}

/** Runs bin/vm as a user would, against one engine, with a private config home. */
export function runVm(args: string[], options: VmOptions): Promise<VmResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(VM_BIN, args, {
      cwd: options.cwd,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: process.env.HOME ?? "/root",
        DOCKER_HOST: options.engine.host,
        VM_LABELS: `${TEST_LABEL}=${RUN_ID}`,
        ...options.env,
      },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

/** A temporary project folder with the given files; removed by the returned cleanup. */
export function makeProject(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "vm-test-"));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A project name unique to this run, so parallel test files never collide. */
export function uniqueName(prefix: string): string {
  return `vmt-${prefix}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Removes every container, image and volume this run labelled, on one engine. */
export function cleanupRun(engine: TestEngine, runId = RUN_ID): void {
  const filter = `label=${TEST_LABEL}${runId ? `=${runId}` : ""}`;
  const containers = docker(engine, ["ps", "-aq", "--filter", filter]).split("\n").filter(Boolean);
  if (containers.length) docker(engine, ["rm", "-f", ...containers]);
  // Children before parents: a pass removes what it can, the next pass what that freed.
  for (let pass = 0; pass < 5; pass++) {
    const images = [
      ...new Set(docker(engine, ["images", "-q", "--filter", filter]).split("\n").filter(Boolean)),
    ];
    if (images.length === 0) break;
    for (const image of images) dockerTry(engine, ["rmi", "-f", image]);
  }
  const volumes = docker(engine, ["volume", "ls", "-q", "--filter", filter]).split("\n").filter(Boolean);
  if (volumes.length) docker(engine, ["volume", "rm", "-f", ...volumes]);
}

/** The IDs of every image this run labelled on one engine, sorted and joined: compare before and after. */
export function runImages(engine: TestEngine): string {
  return docker(engine, ["images", "-qa", "--no-trunc", "--filter", `label=${TEST_LABEL}=${RUN_ID}`])
    .split("\n")
    .filter(Boolean)
    .sort()
    .join(",");
}
