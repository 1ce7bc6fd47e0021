import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { availableEngines, docker } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import { startCutProxy } from "./helpers/cut-proxy.ts";
import { startFileServer, type FileServer } from "./helpers/file-server.ts";
import { caEnv } from "./helpers/test-ca.ts";
import { VM_BIN, cleanupRun, exportedSnapshot, runVm, uniqueName, vmEnv } from "./helpers/vm.ts";

/**
 * Snapshot files from web servers: exported on the Docker 20.10 engine, served over HTTPS (test CA,
 * trusted through NODE_EXTRA_CA_CERTS) or HTTP, through a proxy that cuts the connection, and imported
 * into the Docker 26 containerd engine.
 */
describe("snapshot files from https:// URLs, resumed where the connection drops", () => {
  const engines = availableEngines();
  const maker = engines.find((e) => e.imageStore === "classic") ?? engines[0]!;
  const user = engines.find((e) => e.imageStore === "containerd") ?? engines[engines.length - 1]!;
  const dir = mkdtempSync(join(tmpdir(), "vm-remote-"));
  const name = uniqueName("remote");
  const file = join(dir, `${name}.snapshot.tar.gz`);
  let bytes: Buffer;
  let size = 0;
  let round = 0;
  const servers: { close(): Promise<void> }[] = [];

  /** A machine of its own per import: its config home, and the CA it trusts. */
  const importInto = (url: string, extra: string[] = []) =>
    runVm(["snapshot", "import", url, "--name", `${name}-${++round}`, ...extra], {
      cwd: dir,
      engine: user,
      env: { XDG_CONFIG_HOME: join(dir, `home-${round}`), ...caEnv() },
    });

  async function server(options: Parameters<typeof startFileServer>[0]): Promise<FileServer> {
    const started = await startFileServer({ files: { "/file.tar.gz": bytes }, ...options });
    servers.push(started);
    return started;
  }

  before(async () => {
    await exportedSnapshot(maker, {
      dir,
      home: join(dir, "home-maker"),
      name,
      // A layer of its own, large enough that 10 % of the file is many TCP segments.
      dockerfile: `FROM ${ensureBusybox(maker)}\nRUN echo ${name} > /marker && head -c 3000000 /dev/urandom > /noise\n`,
      out: file,
    });
    bytes = readFileSync(file);
    size = statSync(file).size;
  });

  after(async () => {
    for (const s of servers) await s.close();
    for (const engine of engines) cleanupRun(engine);
    rmSync(dir, { recursive: true, force: true });
  });

  it("imports over HTTPS through cuts at 10 %, 50 % and 90 %, downloading the file about once, and the box runs", async () => {
    const origin = await server({ tls: true });
    const proxy = await startCutProxy({
      target: origin.url,
      cuts: [Math.floor(size * 0.1), Math.floor(size * 0.4), Math.floor(size * 0.4)],
    });
    servers.push(proxy);
    const res = await importInto(proxy.urlOf("/file.tar.gz"));
    assert.equal(res.code, 0, res.stderr);
    assert.equal(proxy.cutsDone, 3);
    assert.equal((res.stderr.match(/resumed there/g) ?? []).length, 3, res.stderr);
    const body = origin.requests.filter((r) => r.method === "GET").reduce((sum, r) => sum + r.bytesSent, 0);
    assert.ok(body < size * 1.2, `${body} bytes served for a ${size}-byte file`);
    assert.equal(
      docker(user, ["run", "--rm", `vm-snapshot/global:${name}-${round}`, "cat", "/marker"]),
      name,
    );
  });

  it("verify and inspect read a URL the same way", async () => {
    const origin = await server({ tls: true });
    const env = { XDG_CONFIG_HOME: join(dir, "home-verify"), ...caEnv() };
    const verified = await runVm(["snapshot", "verify", origin.urlOf("/file.tar.gz")], {
      cwd: dir,
      engine: user,
      env,
    });
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /is intact/);
    const inspected = await runVm(["snapshot", "inspect", origin.urlOf("/file.tar.gz")], {
      cwd: dir,
      engine: user,
      env,
    });
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.match(inspected.stdout, new RegExp(`Snapshot file: ${name}`));
  });

  it("refuses a certificate it does not trust, saying to set NODE_EXTRA_CA_CERTS", async () => {
    const origin = await server({ tls: true });
    const res = await runVm(["snapshot", "import", origin.urlOf("/file.tar.gz")], {
      cwd: dir,
      engine: user,
      env: { XDG_CONFIG_HOME: join(dir, "home-untrusted") },
    });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /is not trusted/);
    assert.match(res.stderr, /NODE_EXTRA_CA_CERTS/);
  });

  it("a server without Range support: read again from the start after a cut, said once, and it imports", async () => {
    const origin = await server({ tls: true, ranges: false });
    const proxy = await startCutProxy({ target: origin.url, cuts: [Math.floor(size * 0.5)] });
    servers.push(proxy);
    const res = await importInto(proxy.urlOf("/file.tar.gz"));
    assert.equal(res.code, 0, res.stderr);
    assert.equal((res.stderr.match(/does not support ranged requests/g) ?? []).length, 1, res.stderr);
    assert.match(res.stderr, /reading it again from the start/);
  });

  it("a byte flipped by the proxy after the cut is caught, and nothing is registered", async () => {
    const origin = await server({ tls: false });
    const cut = Math.floor(size * 0.5);
    const proxy = await startCutProxy({
      target: origin.url,
      cuts: [cut],
      flip: { afterCut: 1, offset: Math.floor((size - cut) / 2), in: "body" },
    });
    servers.push(proxy);
    const res = await importInto(proxy.urlOf("/file.tar.gz"));
    assert.ok(proxy.flipped, "the proxy flipped a byte");
    assert.equal(res.code, 7, res.stderr);
    assert.match(res.stderr, /does not match|damaged|invalid/i);
    const listed = await runVm(["snapshot", "list", "--format", "json"], {
      cwd: dir,
      engine: user,
      env: { XDG_CONFIG_HOME: join(dir, `home-${round}`) },
    });
    assert.deepEqual(JSON.parse(listed.stdout), []);
  });

  it("a file replaced on the server while it downloads fails clearly", async () => {
    const origin = await server({ tls: false });
    const proxy = await startCutProxy({ target: origin.url, cuts: [Math.floor(size * 0.3)] });
    servers.push(proxy);
    const importing = importInto(proxy.urlOf("/file.tar.gz"));
    // The first connection is cut; before vm resumes (it waits half a second), the file changes.
    while (proxy.cutsDone < 1) await new Promise((resolve) => setTimeout(resolve, 10));
    origin.put("/file.tar.gz", Buffer.concat([bytes, Buffer.from("changed")]));
    const res = await importing;
    assert.equal(res.code, 7, res.stderr);
    assert.match(res.stderr, /changed while it was downloaded/);
  });

  it("a missing file and a refused request say what to do", async () => {
    const origin = await server({ tls: true, requireAuth: "Bearer right-token" });
    const denied = await importInto(origin.urlOf("/file.tar.gz"));
    assert.equal(denied.code, 1, denied.stderr);
    assert.match(denied.stderr, /--authorization/);
    const allowed = await importInto(origin.urlOf("/file.tar.gz"), ["--authorization", "Bearer right-token"]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.doesNotMatch(allowed.stderr + allowed.stdout, /right-token/, "the token is never shown");
    const missing = await importInto(origin.urlOf("/nope.tar.gz"), ["--authorization", "Bearer right-token"]);
    assert.equal(missing.code, 4, missing.stderr);
    assert.match(missing.stderr, /does not exist \(HTTP 404\)/);
  });
  it("an import interrupted by Ctrl-C continues where it stopped when run again, reading the file about once in all", async () => {
    // Slow enough that the interruption comes mid-file: the whole file takes about four seconds.
    const origin = await server({ tls: true, bytesPerSecond: Math.ceil(size / 4) });
    const url = origin.urlOf("/file.tar.gz");
    const cache = join(dir, "cache-interrupted");
    const home = join(dir, "home-interrupted");
    const env = { XDG_CONFIG_HOME: home, XDG_CACHE_HOME: cache, ...caEnv() };
    const child = spawn(VM_BIN, ["snapshot", "import", url, "--name", `${name}-interrupted`], {
      cwd: dir,
      env: vmEnv(user, env),
    });
    child.stdout.resume();
    child.stderr.resume();
    const served = () => origin.requests.reduce((sum, r) => sum + r.bytesSent, 0);
    while (served() < size * 0.4) await new Promise((resolve) => setTimeout(resolve, 20));
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 130);
    const downloads = join(cache, "vm", "downloads");
    assert.ok(
      readdirSync(downloads).some((f) => f.endsWith(".part")),
      "the bytes so far are kept",
    );
    const first = served();
    assert.ok(first < size * 0.9, `interrupted after ${first} of ${size} bytes`);
    origin.setBytesPerSecond(undefined);
    const again = await runVm(["snapshot", "import", url, "--name", `${name}-interrupted`], {
      cwd: dir,
      engine: user,
      env,
    });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /Continuing the download an earlier run began/);
    assert.ok(served() < size * 1.2, `${served()} bytes served in all for a ${size}-byte file`);
    assert.deepEqual(existsSync(downloads) ? readdirSync(downloads) : [], [], "nothing kept once it is done");
    assert.equal(
      docker(user, ["run", "--rm", `vm-snapshot/global:${name}-interrupted`, "cat", "/marker"]),
      name,
    );
  });
});
