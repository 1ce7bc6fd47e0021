import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { availableEngines, docker } from "./helpers/engines.ts";
import { ensureBulkImage } from "./helpers/fixtures.ts";
import { EngineProxy } from "./helpers/proxy.ts";
import { cleanupRun, runImages, runVm, uniqueName, type VmResult } from "./helpers/vm.ts";

/**
 * The engine going away in the middle of a transfer: vm reaches the real engine through a proxy socket
 * that the test cuts part-way, as a crashed or restarted engine would. vm must say the connection was
 * lost, exit 6, leave no partial file and no snapshot, and work again once the engine is back.
 */
describe("the engine going away mid-operation", () => {
  const engine = availableEngines()[0]!;
  const dir = mkdtempSync(join(tmpdir(), "vm-enginefault-"));
  const home = join(dir, "home");
  const name = uniqueName("gone");
  const archive = join(dir, "base.snapshot.tar.gz");
  let proxy: EngineProxy | undefined;
  const counts: Record<string, number> = {};

  const vm = (args: string[], host = engine.host): Promise<VmResult> =>
    runVm(args, { cwd: dir, engine: { ...engine, host }, env: { XDG_CONFIG_HOME: home } });
  const images = () => runImages(engine);

  before(async () => {
    writeFileSync(join(dir, "Dockerfile"), `FROM ${ensureBulkImage(engine)}\nRUN echo ${name} > /marker\n`);
    const made = await vm(["snapshot", "create", `@${name}`, "--from-dockerfile", "Dockerfile"]);
    assert.equal(made.code, 0, made.stderr);
    const exported = await vm(["snapshot", "export", `@${name}`, "-o", archive]);
    assert.equal(exported.code, 0, exported.stderr);
  });
  after(() => {
    proxy?.close();
    console.log(
      `engine-loss cases tried: ${Object.entries(counts)
        .map(([k, v]) => `${k}: ${v}`)
        .join(", ")}`,
    );
    cleanupRun(engine);
    rmSync(dir, { recursive: true, force: true });
  });

  function assertLost(res: VmResult): void {
    assert.equal(res.code, 6, res.stderr);
    assert.match(res.stderr, /^Error: The connection to the Docker engine at unix:\/\/.* was lost/m);
    assert.match(res.stderr, /Hint: .*vm doctor/);
    assert.doesNotMatch(res.stderr, /internal error|at .*\.ts:\d+/);
  }

  for (const fraction of [0.1, 0.5, 0.9]) {
    it(`export: cut after ${fraction * 100}% of the image leaves no file and the next export works`, async () => {
      counts.export = (counts.export ?? 0) + 1;
      proxy = await EngineProxy.start(engine.host);
      const out = mkdtempSync(join(dir, "out-"));
      const target = join(out, "x.snapshot.tar.gz");
      const size = Number(
        docker(engine, ["image", "inspect", "-f", "{{.Size}}", `vm-snapshot/global:${name}`]),
      );
      const running = vm(["snapshot", "export", `@${name}`, "-o", target], proxy.host);
      const cutInTime = await proxy.cutWhen((p) => p.bytesFromEngine > size * fraction);
      assert.ok(cutInTime, "the export streamed far enough to cut");
      assertLost(await running);
      assert.deepEqual(readdirSync(out), []);
      const again = await vm(["snapshot", "export", `@${name}`, "-o", target]);
      assert.equal(again.code, 0, again.stderr);
      proxy.close();
    });
  }

  it("(the engine no longer holds the image, so imports below really load it)", async () => {
    const deleted = await vm(["snapshot", "delete", `@${name}`]);
    assert.equal(deleted.code, 0, deleted.stderr);
  });

  for (const fraction of [0.1, 0.5, 0.9]) {
    it(`import: cut after ${fraction * 100}% of the file registers nothing and the next import works`, async () => {
      counts.import = (counts.import ?? 0) + 1;
      proxy = await EngineProxy.start(engine.host);
      const target = `${name}-imp`;
      const before = images();
      const size = (await import("node:fs")).statSync(archive).size;
      const running = vm(["snapshot", "import", archive, "--name", target], proxy.host);
      // Compressed random data: the bytes sent to the engine follow the file's bytes closely.
      const cutInTime = await proxy.cutWhen((p) => p.bytesToEngine > size * fraction);
      assert.ok(cutInTime, "the import streamed far enough to cut");
      assertLost(await running);
      assert.equal(existsSync(join(home, "vm", "snapshots", "global", target)), false);
      const staging = join(home, "vm", "snapshots", ".staging");
      assert.deepEqual(existsSync(staging) ? readdirSync(staging) : [], []);
      assert.equal(images(), before, "the engine dropped the half-sent load");
      const again = await vm(["snapshot", "import", archive, "--name", target]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((await vm(["snapshot", "delete", `@${target}`])).code, 0);
      proxy.close();
    });
  }

  it("an engine that is gone before the command starts: exit 6 and how to check it", async () => {
    counts["no engine"] = (counts["no engine"] ?? 0) + 1;
    proxy = await EngineProxy.start(engine.host);
    proxy.cut();
    const res = await vm(["snapshot", "import", archive, "--name", `${name}-never`], proxy.host);
    assert.equal(res.code, 6, res.stderr);
    assert.match(res.stderr, /Cannot reach the Docker engine at unix:\/\/.*: (ENOENT|ECONNREFUSED)/);
    assert.match(res.stderr, /Hint: Start the Docker engine/);
    assert.equal(existsSync(join(home, "vm", "snapshots", "global", `${name}-never`)), false);
    proxy.close();
  });
});
