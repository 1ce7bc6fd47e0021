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

/** The environment bin/vm runs with in the tests: one engine, this run's label, and `extra`. */
export function vmEnv(engine: TestEngine, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    DOCKER_HOST: engine.host,
    VM_LABELS: `${TEST_LABEL}=${RUN_ID}`,
    ...extra,
  };
}

/** Runs bin/vm as a user would, against one engine, with a private config home. */
export function runVm(args: string[], options: VmOptions): Promise<VmResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(VM_BIN, args, {
      cwd: options.cwd,
      env: vmEnv(options.engine, options.env),
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

export interface Interrupted {
  code: number | null;
  killed: NodeJS.Signals | null;
  stderr: string;
  /** vm said it had reached the pause point before the signal was sent. */
  reached: boolean;
}

/**
 * Runs bin/vm paused at the pause point `point` (VM_TEST_PAUSE) and sends it `signal` once it says it is
 * there: how the interruption trials hit the narrow windows deterministically.
 */
export function interruptAt(
  args: string[],
  point: string,
  signal: NodeJS.Signals,
  options: Omit<VmOptions, "input">,
): Promise<Interrupted> {
  const child = spawn(VM_BIN, args, {
    cwd: options.cwd,
    env: vmEnv(options.engine, { ...options.env, VM_TEST_PAUSE: point }),
  });
  let stderr = "";
  let reached = false;
  child.stdout.resume();
  child.stderr.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
    if (!reached && stderr.includes(`vm-test: paused at ${point}`)) {
      reached = true;
      child.kill(signal);
    }
  });
  return new Promise((resolve) =>
    child.on("close", (code, killed) => resolve({ code, killed, stderr, reached })),
  );
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
  // The test label comes from a LABEL at the end of each build, so the classic builder's step images
  // above it do not carry it; record them while the labelled images still name their parents.
  const labelled = docker(engine, ["images", "-qa", "--no-trunc", "--filter", filter]).split("\n");
  const ancestors = untaggedAncestors(engine, labelled.filter(Boolean));
  // Children before parents: a pass removes what it can, the next pass what that freed. --no-prune: the
  // engine's own pruning of untagged parents would, on the containerd store, delete one that another
  // image still builds on; removeUnusedAncestors checks for children first.
  for (let removed = true; removed;) {
    removed = false;
    const images = new Set(docker(engine, ["images", "-qa", "--filter", filter]).split("\n").filter(Boolean));
    for (const image of images)
      removed = dockerTry(engine, ["rmi", "-f", "--no-prune", image]).status === 0 || removed;
  }
  removeUnusedAncestors(engine, ancestors);
  const volumes = docker(engine, ["volume", "ls", "-q", "--filter", filter]).split("\n").filter(Boolean);
  if (volumes.length) docker(engine, ["volume", "rm", "-f", ...volumes]);
}

/** The untagged images above `images` (their build steps), each chain walked up to a tagged image. */
function untaggedAncestors(engine: TestEngine, images: string[]): Set<string> {
  const found = new Set<string>();
  for (const image of images) {
    let id = dockerTry(engine, ["image", "inspect", "-f", "{{.Parent}}", image]).stdout;
    while (id && !found.has(id)) {
      const res = dockerTry(engine, ["image", "inspect", "-f", "{{len .RepoTags}} {{.Parent}}", id]);
      const [tags, parent = ""] = res.stdout.split(" ");
      if (res.status !== 0 || tags !== "0") break;
      found.add(id);
      id = parent;
    }
  }
  return found;
}

/**
 * Removes the recorded step images no one else needs: still untagged, no child image, no container (the
 * engine refuses that with 409 and the image stays). Children are checked here because the containerd
 * store deletes an image that still has children (the classic store refuses): another test file running
 * at the same time may have built on one of these steps.
 */
function removeUnusedAncestors(engine: TestEngine, ancestors: Set<string>): void {
  const pending = new Set(ancestors);
  while (pending.size > 0) {
    const all = [...new Set(docker(engine, ["images", "-qa", "--no-trunc"]).split("\n").filter(Boolean))];
    const tagCount = new Map<string, number>();
    const parents = new Set<string>();
    const listing = all.length
      ? dockerTry(engine, ["image", "inspect", "-f", "{{.Id}} {{len .RepoTags}} {{.Parent}}", ...all]).stdout
      : "";
    for (const line of listing.split("\n")) {
      const [id, tags, parent] = line.split(" ");
      if (!id) continue;
      tagCount.set(id, Number(tags));
      if (parent) parents.add(parent);
    }
    let removed = false;
    for (const id of pending) {
      if (parents.has(id)) continue; // a child first: ours goes this pass, someone else's keeps it
      pending.delete(id);
      if (tagCount.get(id) === 0)
        removed = dockerTry(engine, ["rmi", "--no-prune", id]).status === 0 || removed;
    }
    if (!removed) break;
  }
}

/**
 * Removes the step images a failed build left (the engine keeps them as build cache, and they carry no
 * label of vm's): the untagged images whose own step mentions `marker`, children before parents.
 */
export function removeStepImages(engine: TestEngine, marker: string): void {
  const untagged = docker(engine, ["images", "-qa", "--no-trunc"])
    .split("\n")
    .filter(Boolean)
    .filter((id, i, all) => all.indexOf(id) === i)
    .filter((id) => dockerTry(engine, ["image", "inspect", "-f", "{{len .RepoTags}}", id]).stdout === "0");
  const steps = untagged.filter((id) =>
    dockerTry(engine, ["history", "--no-trunc", "--format", "{{.CreatedBy}}", id])
      .stdout.split("\n")[0]
      ?.includes(marker),
  );
  for (let pending = steps; pending.length > 0;) {
    const left = pending.filter((id) => dockerTry(engine, ["rmi", "--no-prune", id]).status !== 0);
    if (left.length === pending.length) break;
    pending = left;
  }
}

/** The IDs of every image this run labelled on one engine, sorted and joined: compare before and after. */
export function runImages(engine: TestEngine): string {
  return docker(engine, ["images", "-qa", "--no-trunc", "--filter", `label=${TEST_LABEL}=${RUN_ID}`])
    .split("\n")
    .filter(Boolean)
    .sort()
    .join(",");
}

/**
 * Builds a global snapshot `@name` from a Dockerfile and exports it to `out`, in the config home `home`:
 * the setup of every test that needs a genuine snapshot file.
 */
export async function exportedSnapshot(
  engine: TestEngine,
  options: { dir: string; home: string; name: string; dockerfile: string; out: string },
): Promise<string> {
  const { dir, home, name, dockerfile, out } = options;
  const env = { XDG_CONFIG_HOME: home };
  const p = makeProject({ Dockerfile: dockerfile });
  try {
    const made = await runVm(
      ["snapshot", "create", `@${name}`, "--from-dockerfile", join(p.dir, "Dockerfile")],
      {
        cwd: dir,
        engine,
        env,
      },
    );
    if (made.code !== 0) throw new Error(`vm snapshot create @${name} exited ${made.code}: ${made.stderr}`);
  } finally {
    p.cleanup();
  }
  const exported = await runVm(["snapshot", "export", `@${name}`, "-o", out], { cwd: dir, engine, env });
  if (exported.code !== 0)
    throw new Error(`vm snapshot export @${name} exited ${exported.code}: ${exported.stderr}`);
  return out;
}
