import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { availableEngines, dockerTry } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import {
  cleanupRun,
  exportedSnapshot,
  interruptAt as interruptVmAt,
  runImages,
  runVm,
  uniqueName,
} from "./helpers/vm.ts";

/**
 * Interruptions at the narrow windows of import and export, reached every time: VM_TEST_PAUSE makes vm
 * stop at a named point and say so, the test signals it there, and vm goes on as one busy there would.
 * Before the commit, an interruption must undo everything; during it, it must let the commit finish.
 */
describe("interruptions at named points of import and export (VM_TEST_PAUSE)", () => {
  const engine = availableEngines()[0]!;
  const dir = mkdtempSync(join(tmpdir(), "vm-pause-"));
  const home = join(dir, "home");
  const name = uniqueName("pause");
  const file = join(dir, `${name}.snapshot.tar.gz`);
  const env = { XDG_CONFIG_HOME: home };
  const vm = (args: string[]) => runVm(args, { cwd: dir, engine, env });

  /** Runs vm paused at `point`, sends `signal` once it says it is there; its exit and stderr. */
  const interruptAt = (args: string[], point: string, signal: NodeJS.Signals) =>
    interruptVmAt(args, point, signal, { cwd: dir, engine, env });

  const listed = async (snapshot: string) => {
    const res = await vm(["snapshot", "list", "--format", "json"]);
    assert.equal(res.code, 0, res.stderr);
    return (JSON.parse(res.stdout) as { name: string }[]).some((s) => s.name === snapshot);
  };

  before(async () => {
    const busybox = ensureBusybox(engine);
    await exportedSnapshot(engine, {
      dir,
      home,
      name,
      dockerfile: `FROM ${busybox}\nRUN echo ${name} > /marker\n`,
      out: file,
    });
  });

  after(() => {
    cleanupRun(engine);
    rmSync(dir, { recursive: true, force: true });
  });

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const exit = signal === "SIGINT" ? 130 : 143;

    it(`import, ${signal} after every check and before the registration: no snapshot, nothing loaded left`, async () => {
      const target = `${name}-before-${signal.toLowerCase()}`;
      const images = runImages(engine);
      const run = await interruptAt(
        ["snapshot", "import", file, "--name", target],
        "import-before-commit",
        signal,
      );
      assert.ok(run.reached, run.stderr);
      assert.equal(run.code, exit, run.stderr);
      assert.equal(await listed(target), false);
      assert.notEqual(dockerTry(engine, ["image", "inspect", `vm-snapshot/global:${target}`]).status, 0);
      assert.equal(runImages(engine), images, "the loaded image was removed");
      const again = await vm(["snapshot", "import", file, "--name", target]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await vm(["snapshot", "delete", `@${target}`])).code, 0);
    });

    it(`import, ${signal} during the registration: it finishes, and the snapshot is whole`, async () => {
      const target = `${name}-during-${signal.toLowerCase()}`;
      const run = await interruptAt(
        ["snapshot", "import", file, "--name", target],
        "import-committing",
        signal,
      );
      assert.ok(run.reached, run.stderr);
      assert.equal(run.code, exit, run.stderr);
      assert.equal(await listed(target), true);
      const exec = await vm(["snapshot", "inspect", `@${target}`]);
      assert.equal(exec.code, 0, exec.stderr);
      assert.equal(dockerTry(engine, ["image", "inspect", `vm-snapshot/global:${target}`]).status, 0);
      assert.equal((await vm(["snapshot", "delete", `@${target}`])).code, 0);
    });

    it(`export, ${signal} with the file written and before its rename: no file, no temporary file`, async () => {
      const out = join(dir, `out-before-${signal}`);
      mkdirSync(out);
      const target = join(out, "x.snapshot.tar.gz");
      const run = await interruptAt(
        ["snapshot", "export", `@${name}`, "-o", target],
        "export-before-commit",
        signal,
      );
      assert.ok(run.reached, run.stderr);
      assert.equal(run.code, exit, run.stderr);
      assert.deepEqual(readdirSync(out), []);
    });

    it(`export, ${signal} during the rename: the file is there and verifies`, async () => {
      const out = join(dir, `out-during-${signal}`);
      mkdirSync(out);
      const target = join(out, "x.snapshot.tar.gz");
      const run = await interruptAt(
        ["snapshot", "export", `@${name}`, "-o", target],
        "export-committing",
        signal,
      );
      assert.ok(run.reached, run.stderr);
      assert.equal(run.code, exit, run.stderr);
      assert.deepEqual(readdirSync(out), ["x.snapshot.tar.gz"]);
      const verify = await vm(["snapshot", "verify", target]);
      assert.equal(verify.code, 0, verify.stderr);
    });
  }

  it("import, SIGKILL before the registration: the next import reclaims the lock and succeeds", async () => {
    const target = `${name}-killed`;
    const run = await interruptAt(
      ["snapshot", "import", file, "--name", target],
      "import-before-commit",
      "SIGKILL",
    );
    assert.ok(run.reached, run.stderr);
    assert.equal(run.killed, "SIGKILL");
    assert.equal(await listed(target), false);
    const locks = join(home, "vm", "snapshots", ".locks");
    assert.ok(existsSync(locks) && readdirSync(locks).length > 0, "the killed import left its lock");
    const again = await vm(["snapshot", "import", file, "--name", target]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(await listed(target), true);
  });
});
