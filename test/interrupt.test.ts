import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { availableEngines, docker, dockerTry } from "./helpers/engines.ts";
import { ensureBulkImage } from "./helpers/fixtures.ts";
import {
  cleanupRun,
  RUN_ID,
  runImages,
  runVm,
  TEST_LABEL,
  uniqueName,
  VM_BIN,
  vmEnv,
  type VmResult,
} from "./helpers/vm.ts";

/**
 * Interruptions at random points: each trial starts a real vm command, sends SIGINT, SIGTERM or SIGKILL
 * after a random delay within the command's usual duration, checks what is left at once, then runs the
 * same command again, which must succeed and leave nothing of the killed run behind. The seed is printed;
 * VM_TEST_SEED=N repeats a run's delays.
 */
describe("interruptions at random points of export, import, snapshot create and vm create", () => {
  const engine = availableEngines()[0]!;
  const dir = mkdtempSync(join(tmpdir(), "vm-interrupt-"));
  const home = join(dir, "home");
  const base = uniqueName("intr");
  const seed = Number(process.env.VM_TEST_SEED ?? Date.now() % 100000);
  let state = seed;
  const random = () => {
    // mulberry32: small, seedable, good enough to spread delays.
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const signals = ["SIGINT", "SIGTERM", "SIGKILL"] as const;
  const counts: Record<string, number> = {};
  const project = join(dir, "project");
  const env = { XDG_CONFIG_HOME: home };
  const vm = (args: string[], cwd = dir): Promise<VmResult> => runVm(args, { cwd, engine, env });

  /** Starts vm, signals it after `delayMs`, and resolves with its exit code (null when killed). */
  function interrupt(
    args: string[],
    cwd: string,
    signal: (typeof signals)[number],
    delayMs: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
    const child = spawn(VM_BIN, args, {
      cwd,
      env: vmEnv(engine, env),
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdout.resume();
    const timer = setTimeout(() => child.kill(signal), delayMs);
    return new Promise((resolve) =>
      child.on("close", (code, killedBy) => {
        clearTimeout(timer);
        resolve({ code, signal: killedBy, stderr });
      }),
    );
  }

  async function timed(args: string[], cwd = dir): Promise<number> {
    const start = Date.now();
    const res = await vm(args, cwd);
    assert.equal(res.code, 0, res.stderr);
    return Date.now() - start;
  }

  /** Delays spread over the command's usual duration, from its start-up to just past its end. */
  function delays(durationMs: number, n: number): number[] {
    return Array.from({ length: n }, () => Math.round(60 + random() * durationMs * 1.1));
  }

  function assertExit(
    result: { code: number | null; signal: NodeJS.Signals | null; stderr: string },
    signal: (typeof signals)[number],
  ): "finished" | "interrupted" {
    if (result.code === 0) {
      counts["finished before the signal"] = (counts["finished before the signal"] ?? 0) + 1;
      return "finished";
    }
    // Either vm caught it, cleaned up and exited 128+signal, or it ended by the signal itself.
    const expected = { SIGINT: 130, SIGTERM: 143, SIGKILL: -1 }[signal];
    assert.ok(
      result.code === expected || result.signal === signal,
      `${signal}: ${result.code} ${result.stderr}`,
    );
    assert.doesNotMatch(result.stderr, /internal error|at .*\.ts:\d+/);
    return "interrupted";
  }

  const stagingTags = () =>
    docker(engine, [
      "images",
      "--format",
      "{{.Repository}}:{{.Tag}}",
      "--filter",
      `label=${TEST_LABEL}=${RUN_ID}`,
    ])
      .split("\n")
      .filter((t) => t.startsWith("vm-snapshot/staging:"));
  const probes = () =>
    docker(engine, [
      "ps",
      "-aq",
      "--filter",
      "label=dev.vm.role=snapshot",
      "--filter",
      `label=${TEST_LABEL}=${RUN_ID}`,
    ])
      .split("\n")
      .filter(Boolean);
  const listed = async (name: string) => {
    const res = await vm(["snapshot", "list", "--format", "json"]);
    assert.equal(res.code, 0, res.stderr);
    return (JSON.parse(res.stdout) as { name: string }[]).some((s) => s.name === name);
  };

  before(async () => {
    const bulk = ensureBulkImage(engine);
    writeFileSync(join(dir, "Dockerfile"), `FROM ${bulk}\nRUN echo ${base} > /marker\n`);
    const made = await vm(["snapshot", "create", `@${base}`, "--from-dockerfile", "Dockerfile"]);
    assert.equal(made.code, 0, made.stderr);
    const res = await vm(["snapshot", "export", `@${base}`, "-o", join(dir, "base.snapshot.tar.gz")]);
    assert.equal(res.code, 0, res.stderr);
    mkdirSync(project);
    writeFileSync(join(project, "vm.yaml"), `project:\n  name: ${base}-p\nvm:\n  box: "@${base}"\n`);
  });

  after(() => {
    console.log(
      `interruption trials (seed ${seed}): ${Object.entries(counts)
        .map(([k, v]) => `${k}: ${v}`)
        .join(", ")}`,
    );
    dockerTry(engine, ["rm", "-f", `${base}-p-dev`]);
    cleanupRun(engine);
    rmSync(dir, { recursive: true, force: true });
  });

  it("export: no partial file at the target, and the next export succeeds and removes leftovers", async () => {
    const out = join(dir, "out");
    mkdirSync(out);
    const target = join(out, "x.snapshot.tar.gz");
    const args = ["snapshot", "export", `@${base}`, "-o", target];
    const duration = await timed(args);
    rmSync(target);
    for (const signal of signals) {
      for (const delay of delays(duration, 2)) {
        counts[`export ${signal}`] = (counts[`export ${signal}`] ?? 0) + 1;
        const how = assertExit(await interrupt(args, dir, signal, delay), signal);
        const left = readdirSync(out);
        if (how === "finished") assert.deepEqual(left, ["x.snapshot.tar.gz"]);
        else if (existsSync(target)) {
          // Interrupted after the rename: the file is whole.
          const whole = await vm(["snapshot", "verify", target]);
          assert.equal(whole.code, 0, `${signal} at ${delay} ms left a target that does not verify`);
        } else {
          if (signal !== "SIGKILL")
            assert.deepEqual(left, [], `${signal} at ${delay} ms left ${left.join(", ")}`);
        }
        const again = await vm(args);
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(readdirSync(out), ["x.snapshot.tar.gz"]);
        const verify = await vm(["snapshot", "verify", target]);
        assert.equal(verify.code, 0, verify.stderr);
        rmSync(target);
      }
    }
  });

  it("import: never a visible half snapshot, nothing loaded is left, and the next import succeeds", async () => {
    const file = join(dir, "base.snapshot.tar.gz");
    const target = `${base}-imp`;
    const args = ["snapshot", "import", file, "--name", target, "--force"];
    const duration = await timed(args);
    assert.equal((await vm(["snapshot", "delete", `@${target}`, "--force"])).code, 0);
    const images = () => runImages(engine);
    const before = images();
    for (const signal of signals) {
      for (const delay of delays(duration, 2)) {
        counts[`import ${signal}`] = (counts[`import ${signal}`] ?? 0) + 1;
        const how = assertExit(await interrupt(args, dir, signal, delay), signal);
        if (await listed(target)) {
          // Visible means whole: its metadata reads and its image is in the engine.
          const inspect = await vm(["snapshot", "inspect", `@${target}`]);
          assert.equal(inspect.code, 0, inspect.stderr);
          assert.equal(dockerTry(engine, ["image", "inspect", `vm-snapshot/global:${target}`]).status, 0);
        } else if (how === "interrupted" && signal !== "SIGKILL") {
          assert.equal(images(), before, `${signal} at ${delay} ms left an image in the engine`);
        }
        const again = await vm(args);
        assert.equal(again.code, 0, again.stderr);
        assert.ok(await listed(target));
        const deleted = await vm(["snapshot", "delete", `@${target}`, "--force"]);
        assert.equal(deleted.code, 0, deleted.stderr);
        const staging = join(home, "vm", "snapshots", ".staging");
        assert.deepEqual(existsSync(staging) ? readdirSync(staging) : [], []);
      }
    }
  });

  it("snapshot create --quiesce: the environment is never left paused and the next create succeeds", async () => {
    const up = await vm(["create"], project);
    assert.equal(up.code, 0, up.stderr);
    const container = `${base}-p-dev`;
    const paused = () => docker(engine, ["inspect", "-f", "{{.State.Paused}}", container]) === "true";
    const target = `${base}-snap`;
    const args = ["snapshot", "create", `@${target}`, "--quiesce", "--force"];
    const duration = await timed(args, project);
    for (const signal of signals) {
      for (const delay of delays(duration, 2)) {
        counts[`snapshot create ${signal}`] = (counts[`snapshot create ${signal}`] ?? 0) + 1;
        assertExit(await interrupt(args, project, signal, delay), signal);
        if (signal !== "SIGKILL") assert.equal(paused(), false, `${signal} at ${delay} ms left it paused`);
        if (await listed(target)) {
          const inspect = await vm(["snapshot", "inspect", `@${target}`]);
          assert.equal(inspect.code, 0, inspect.stderr);
        }
        const again = await vm(args, project);
        assert.equal(again.code, 0, again.stderr);
        assert.equal(paused(), false, "the next run unpaused it");
        assert.deepEqual(stagingTags(), [], "no staged image tags are left");
        assert.deepEqual(probes(), [], "no probe containers are left");
      }
    }
    const exec = await vm(["exec", "--", "cat", "/marker"], project);
    assert.equal(exec.code, 0, exec.stderr);
    assert.equal(exec.stdout.trim(), base);
  });

  it("leftovers of a SIGKILLed snapshot create (paused environment, staged tag, probe) go on the next run", async () => {
    const up = await vm(["create", "--force"], project);
    assert.equal(up.code, 0, up.stderr);
    const container = `${base}-p-dev`;
    const id = docker(engine, ["inspect", "-f", "{{.Id}}", container]);
    // What a vm killed mid-quiesce leaves: the container paused and a marker naming a pid that is gone.
    docker(engine, ["pause", container]);
    const markers = join(home, "vm", "snapshots", ".paused");
    mkdirSync(markers, { recursive: true });
    writeFileSync(join(markers, id), "999999\n");
    const exec = await vm(["exec", "--", "cat", "/marker"], project);
    assert.equal(exec.code, 0, exec.stderr);
    assert.match(
      exec.stderr,
      /Unpaused .*-p-dev: an interrupted vm snapshot create --quiesce \(pid 999999\) had left it paused/,
    );
    assert.equal(docker(engine, ["inspect", "-f", "{{.State.Paused}}", container]), "false");
    assert.equal(existsSync(join(markers, id)), false);
    // Paused by someone else (no marker): vm leaves it alone and says how to bring it back.
    docker(engine, ["pause", container]);
    const refused = await vm(["exec", "--", "true"], project);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /is paused, not running/);
    docker(engine, ["unpause", container]);
    // A staged image tag and a probe container of a dead vm on this host.
    const hostTag = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);
    const staged = `vm-snapshot/staging:999999-${hostTag}-deadbeef`;
    docker(engine, ["tag", `vm-snapshot/global:${base}`, staged]);
    const probe = docker(engine, [
      "create",
      "--label",
      "dev.vm.managed=true",
      "--label",
      "dev.vm.role=snapshot",
      "--label",
      `dev.vm.owner=${hostname()}/999999`,
      "--label",
      `${TEST_LABEL}=${RUN_ID}`,
      `vm-snapshot/global:${base}`,
      "true",
    ]);
    const made = await vm(["snapshot", "create", `@${base}-after`, "--force"], project);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stderr, /Removed 2 leftover\(s\) of an interrupted vm snapshot create/);
    assert.notEqual(dockerTry(engine, ["image", "inspect", staged]).status, 0);
    assert.notEqual(dockerTry(engine, ["inspect", probe]).status, 0);
    assert.equal(
      dockerTry(engine, ["image", "inspect", `vm-snapshot/global:${base}`]).status,
      0,
      "the snapshot keeps its tag",
    );
  });

  it("two snapshot creates of the same name at once: exactly one wins, the other reports the conflict", async () => {
    const target = `${base}-race`;
    for (let round = 0; round < 3; round++) {
      counts["concurrent creates"] = (counts["concurrent creates"] ?? 0) + 1;
      const results = await Promise.all([
        vm(["snapshot", "create", `@${target}`, "--from-dockerfile", "Dockerfile"]),
        vm(["snapshot", "create", `@${target}`, "--from-dockerfile", "Dockerfile"]),
      ]);
      const codes = results.map((r) => r.code).sort();
      assert.deepEqual(codes, [0, 5], results.map((r) => r.stderr).join("\n"));
      const loser = results.find((r) => r.code === 5)!;
      assert.match(
        loser.stderr,
        new RegExp(`Snapshot '@${target}' (is being created by another vm \\(pid \\d+\\)|already exists)`),
      );
      const inspect = await vm(["snapshot", "inspect", `@${target}`]);
      assert.equal(inspect.code, 0, inspect.stderr);
      assert.deepEqual(stagingTags(), [], "the loser left no staged image");
      const deleted = await vm(["snapshot", "delete", `@${target}`]);
      assert.equal(deleted.code, 0, deleted.stderr);
    }
  });

  it("vm create: no half-made environment, and the next vm create succeeds", async () => {
    dockerTry(engine, ["rm", "-f", `${base}-p-dev`]);
    const args = ["create"];
    const duration = await timed(args, project);
    assert.equal((await vm(["destroy", "--force"], project)).code, 0);
    const state = async () => {
      // A container being removed is on its way out; wait for the engine to finish with it.
      for (let i = 0; i < 100; i++) {
        const res = dockerTry(engine, ["inspect", "-f", "{{.State.Status}}", `${base}-p-dev`]);
        if (res.status !== 0 || res.stdout !== "removing") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const res = dockerTry(engine, ["inspect", "-f", "{{.State.Status}}", `${base}-p-dev`]);
      return res.status === 0 ? res.stdout : "absent";
    };
    for (const signal of signals) {
      for (const delay of delays(duration, 2)) {
        counts[`vm create ${signal}`] = (counts[`vm create ${signal}`] ?? 0) + 1;
        const how = assertExit(await interrupt(args, project, signal, delay), signal);
        const after = await state();
        if (how === "finished") assert.equal(after, "running");
        else if (signal !== "SIGKILL")
          assert.ok(["absent", "running"].includes(after), `${signal} left it ${after}`);
        const again = await vm(args, project);
        if (after === "running") {
          // The interrupted run had finished its work: the environment is whole, and vm says it exists.
          assert.equal(again.code, 5, again.stderr);
          assert.match(again.stderr, /already has an environment \(.*, running\)/);
        } else {
          assert.equal(again.code, 0, again.stderr);
        }
        const exec = await vm(["exec", "--", "cat", "/marker"], project);
        assert.equal(exec.code, 0, exec.stderr);
        assert.equal((await vm(["destroy", "--force"], project)).code, 0);
      }
    }
  });
});
