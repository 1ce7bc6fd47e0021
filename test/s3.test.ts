import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { availableEngines, docker } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import { startCutProxy, type CutProxy } from "./helpers/cut-proxy.ts";
import { startS3Server, type S3Server } from "./helpers/s3-server.ts";
import { spawn } from "node:child_process";
import { VM_BIN, cleanupRun, exportedSnapshot, interruptAt, runVm, uniqueName, vmEnv } from "./helpers/vm.ts";

/**
 * Snapshot files in object storage: exported on the Docker 20.10 engine, stored in an S3-compatible
 * server on loopback (fauxqs), read from s3:// paths (directly, or through a proxy that cuts the
 * connection) into the Docker 26 containerd engine.
 */
describe("snapshot files from s3:// paths, resumed where the connection drops", () => {
  const engines = availableEngines();
  const maker = engines.find((e) => e.imageStore === "classic") ?? engines[0]!;
  const user = engines.find((e) => e.imageStore === "containerd") ?? engines[engines.length - 1]!;
  const dir = mkdtempSync(join(tmpdir(), "vm-s3-"));
  const name = uniqueName("s3");
  const file = join(dir, `${name}.snapshot.tar.gz`);
  const bucket = "company-vms";
  const key = `${name}.snapshot.tar.gz`;
  let bytes: Buffer;
  let s3: S3Server;
  let round = 0;
  const proxies: CutProxy[] = [];

  /** A machine of its own per run: its config home, and the store's address and credentials. */
  const vmOn = (args: string[], env: Record<string, string> = {}) =>
    runVm(args, {
      cwd: dir,
      engine: user,
      env: { XDG_CONFIG_HOME: join(dir, `home-${++round}`), ...s3.env, ...env },
    });

  before(async () => {
    s3 = await startS3Server();
    s3.createBucket(bucket);
    await exportedSnapshot(maker, {
      dir,
      home: join(dir, "home-maker"),
      name,
      // A layer of its own, large enough that 10 % of the file is many TCP segments.
      dockerfile: `FROM ${ensureBusybox(maker)}\nRUN echo ${name} > /marker && head -c 3000000 /dev/urandom > /noise\n`,
      out: file,
    });
    bytes = readFileSync(file);
    await s3.put(bucket, key, bytes);
  });

  after(async () => {
    for (const p of proxies) await p.close();
    await s3?.close();
    for (const engine of engines) cleanupRun(engine);
    rmSync(dir, { recursive: true, force: true });
  });

  async function proxy(cuts: number[], flip?: { offset: number }): Promise<CutProxy> {
    const started = await startCutProxy({
      target: s3.endpoint,
      cuts,
      ...(flip ? { flip: { afterCut: 1, offset: flip.offset, in: "body" as const } } : {}),
    });
    proxies.push(started);
    return started;
  }

  it("imports from s3:// through cuts at 10 %, 50 % and 90 %, reading the file about once, and an environment from it runs", async () => {
    const size = bytes.length;
    const cutting = await proxy([Math.floor(size * 0.1), Math.floor(size * 0.4), Math.floor(size * 0.4)]);
    const snapshot = `${name}-cut`;
    const res = await vmOn(["snapshot", "import", `s3://${bucket}/${key}`, "--name", snapshot], {
      AWS_ENDPOINT_URL_S3: cutting.url,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(cutting.cutsDone, 3);
    assert.equal((res.stderr.match(/resumed there/g) ?? []).length, 3, res.stderr);
    assert.ok(
      cutting.bytesFromServer < size * 1.2,
      `${cutting.bytesFromServer} bytes for a ${size}-byte file`,
    );
    // The design document's next step: a project whose box is the snapshot.
    const home = join(dir, `home-${round}`);
    const projectDir = mkdtempSync(join(dir, "project-"));
    writeFileSync(join(projectDir, "vm.yaml"), `vm.box: "@${snapshot}"\n`);
    const env = { XDG_CONFIG_HOME: home };
    const created = await runVm(["create"], { cwd: projectDir, engine: user, env });
    assert.equal(created.code, 0, created.stderr);
    const marker = await runVm(["exec", "--", "cat", "/marker"], { cwd: projectDir, engine: user, env });
    assert.equal(marker.code, 0, marker.stderr);
    assert.equal(marker.stdout.trim(), name);
    const destroyed = await runVm(["destroy", "--force"], { cwd: projectDir, engine: user, env });
    assert.equal(destroyed.code, 0, destroyed.stderr);
    assert.equal(docker(user, ["run", "--rm", `vm-snapshot/global:${snapshot}`, "cat", "/marker"]), name);
  });

  it("verify and inspect read an s3:// path, with --endpoint instead of the environment", async () => {
    const verified = await vmOn(["snapshot", "verify", `s3://${bucket}/${key}`, "--endpoint", s3.endpoint], {
      AWS_ENDPOINT_URL_S3: "",
    });
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, new RegExp(`s3://${bucket}/${key} is intact`));
    const inspected = await vmOn(["snapshot", "inspect", `s3://${bucket}/${key}`]);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.match(inspected.stdout, new RegExp(`Snapshot file: ${name}`));
  });

  it("a byte flipped after a cut is caught, and nothing is registered", async () => {
    const size = bytes.length;
    const cut = Math.floor(size * 0.5);
    const flipping = await proxy([cut], { offset: Math.floor((size - cut) / 2) });
    const res = await vmOn(["snapshot", "import", `s3://${bucket}/${key}`, "--name", `${name}-flip`], {
      AWS_ENDPOINT_URL_S3: flipping.url,
    });
    assert.ok(flipping.flipped, "the proxy flipped a byte");
    assert.equal(res.code, 7, res.stderr);
    const listed = await runVm(["snapshot", "list", "--json"], {
      cwd: dir,
      engine: user,
      env: { XDG_CONFIG_HOME: join(dir, `home-${round}`) },
    });
    assert.deepEqual(JSON.parse(listed.stdout), []);
  });

  it("an object replaced while it downloads fails clearly (If-Match)", async () => {
    const replacedKey = `${name}-replaced.snapshot.tar.gz`;
    await s3.put(bucket, replacedKey, bytes);
    const cutting = await proxy([Math.floor(bytes.length * 0.3)]);
    const importing = vmOn(["snapshot", "import", `s3://${bucket}/${replacedKey}`], {
      AWS_ENDPOINT_URL_S3: cutting.url,
    });
    // The first connection is cut; before vm resumes (it waits half a second), the object changes.
    while (cutting.cutsDone < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    await s3.put(bucket, replacedKey, Buffer.concat([bytes, Buffer.from("changed")]));
    const res = await importing;
    assert.equal(res.code, 7, res.stderr);
    assert.match(res.stderr, /changed while it was (downloaded|read)/);
  });

  it("a missing key, a missing bucket, no credentials and an unreachable store say what to do", async () => {
    const missing = await vmOn(["snapshot", "import", `s3://${bucket}/nope.tar.gz`]);
    assert.equal(missing.code, 4, missing.stderr);
    assert.match(missing.stderr, /s3:\/\/company-vms\/nope\.tar\.gz does not exist/);
    const noBucket = await vmOn(["snapshot", "import", `s3://no-such-bucket/${key}`]);
    assert.equal(noBucket.code, 4, noBucket.stderr);
    assert.match(noBucket.stderr, /The bucket no-such-bucket does not exist/);
    const noCredentials = await vmOn(["snapshot", "verify", `s3://${bucket}/${key}`], {
      AWS_ACCESS_KEY_ID: "",
      AWS_SECRET_ACCESS_KEY: "",
      HOME: dir,
      AWS_CONFIG_FILE: join(dir, "none"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, "none"),
    });
    assert.equal(noCredentials.code, 1, noCredentials.stderr);
    assert.match(noCredentials.stderr, /No AWS credentials were found/);
    assert.match(noCredentials.stderr, /aws configure/);
    const unreachable = await vmOn(["snapshot", "verify", `s3://${bucket}/${key}`], {
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9",
    });
    assert.equal(unreachable.code, 1, unreachable.stderr);
    assert.match(unreachable.stderr, /Cannot reach http:\/\/127\.0\.0\.1:9/);
  });
  it("exports to s3:// from the 20.10 engine in parts uploaded while it is written, and the containerd engine imports it", async () => {
    const big = `${name}-big`;
    const makerHome = join(dir, "home-maker");
    await exportedSnapshot(maker, {
      dir,
      home: makerHome,
      name: big,
      // Incompressible, so the file spans several 5 MiB parts and the image entry's header waits in the first.
      dockerfile: `FROM ${ensureBusybox(maker)}\nRUN echo ${big} > /marker && head -c 30000000 /dev/urandom > /noise\n`,
      out: join(dir, `${big}.snapshot.tar.gz`),
    });
    const target = `s3://${bucket}/vibe-2024-10.snapshot.tar.gz`;
    const cache = join(dir, "cache-maker");
    const exported = await runVm(["snapshot", "export", `@${big}`, "--output", target], {
      cwd: dir,
      engine: maker,
      env: { XDG_CONFIG_HOME: makerHome, XDG_CACHE_HOME: cache, ...s3.env },
    });
    assert.equal(exported.code, 0, exported.stderr);
    // The part that held the header waited in the cache folder, and is gone once uploaded.
    assert.deepEqual(
      readdirSync(join(cache, "vm")).filter((f) => f.startsWith(".vm-spool-")),
      [],
    );
    assert.match(exported.stdout, new RegExp(`Exported ${big} to ${target}`));
    assert.match(exported.stdout, new RegExp(`vm snapshot import ${target}`));
    const stored = await s3.head(bucket, "vibe-2024-10.snapshot.tar.gz");
    assert.ok(stored, "the object exists");
    assert.ok(stored.size > 30_000_000, `${stored.size} bytes stored`);
    const parts = Number(/-(\d+)"$/.exec(stored.etag)?.[1]);
    assert.ok(parts >= 3, `a multipart upload of several parts (ETag ${stored.etag})`);
    const imported = await vmOn(["snapshot", "import", target]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(docker(user, ["run", "--rm", `vm-snapshot/global:${big}`, "cat", "/marker"]), big);
  });

  it("Ctrl-C during an export to s3:// leaves no object under the key, and a missing bucket is said", async () => {
    const key2 = `${name}-interrupted.snapshot.tar.gz`;
    const point = "export-before-commit";
    const interrupted = await interruptAt(
      ["snapshot", "export", `@${name}`, "--output", `s3://${bucket}/${key2}`],
      point,
      "SIGINT",
      { cwd: dir, engine: maker, env: { XDG_CONFIG_HOME: join(dir, "home-maker"), ...s3.env } },
    );
    assert.ok(interrupted.reached, interrupted.stderr);
    assert.equal(interrupted.code, 130, interrupted.stderr);
    assert.equal(await s3.head(bucket, key2), undefined, "nothing appears under the key");
    const path = `/${bucket}/${key2}`;
    const started = s3.requests.filter((r) => r.method === "POST" && r.url.startsWith(`${path}?uploads`));
    assert.equal(started.length, 1, "one multipart upload was started");
    const aborted = s3.requests.filter((r) => r.method === "DELETE" && r.url.startsWith(`${path}?uploadId=`));
    assert.equal(aborted.length, 1, "and aborted, so the store drops its parts");
    assert.equal(aborted[0]!.status, 204);
    const noBucket = await runVm(
      ["snapshot", "export", `@${name}`, "--output", `s3://no-such-bucket/${key2}`],
      {
        cwd: dir,
        engine: maker,
        env: { XDG_CONFIG_HOME: join(dir, "home-maker"), ...s3.env },
      },
    );
    assert.equal(noBucket.code, 4, noBucket.stderr);
    assert.match(noBucket.stderr, /The bucket no-such-bucket does not exist/);
  });
  it("an import from s3:// interrupted by Ctrl-C continues where it stopped when run again (If-Match on the ETag)", async () => {
    const size = bytes.length;
    // The connection stalls at 50 %: vm waits there until it is interrupted.
    const stalling = await startCutProxy({
      target: s3.endpoint,
      cuts: [{ after: Math.floor(size * 0.5), mode: "stall" }],
    });
    proxies.push(stalling);
    const cache = join(dir, "cache-s3-interrupted");
    const env = { XDG_CONFIG_HOME: join(dir, "home-s3-interrupted"), XDG_CACHE_HOME: cache, ...s3.env };
    const child = spawn(VM_BIN, ["snapshot", "import", `s3://${bucket}/${key}`, "--name", `${name}-again`], {
      cwd: dir,
      env: vmEnv(user, { ...env, AWS_ENDPOINT_URL_S3: stalling.url }),
    });
    child.stdout.resume();
    child.stderr.resume();
    while (stalling.cutsDone < 1) await new Promise((resolve) => setTimeout(resolve, 20));
    await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill("SIGINT");
    assert.equal(await new Promise<number | null>((resolve) => child.on("close", resolve)), 130);
    const counting = await proxy([]);
    const again = await runVm(["snapshot", "import", `s3://${bucket}/${key}`, "--name", `${name}-again`], {
      cwd: dir,
      engine: user,
      env: { ...env, AWS_ENDPOINT_URL_S3: counting.url },
    });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Continuing the download an earlier run began/);
    assert.ok(
      counting.bytesFromServer < size * 0.7,
      `${counting.bytesFromServer} bytes read again of ${size}`,
    );
    assert.equal(docker(user, ["run", "--rm", `vm-snapshot/global:${name}-again`, "cat", "/marker"]), name);
  });
});
