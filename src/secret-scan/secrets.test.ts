import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { Readable, Writable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { pipeline } from "node:stream/promises";
import { describe, it } from "node:test";
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import zlib from "node:zlib";
import { pack } from "tar-stream";
import { BLOCK, END_OF_ARCHIVE, encodeHeader, padding } from "../lib/tar-header.ts";
import { isVmError } from "../errors.ts";
import { type SecretFinding, SecretScanner } from "./secrets.ts";

interface Item {
  name: string;
  content?: string | Buffer;
  type?: "file" | "directory" | "symlink";
  linkname?: string;
}

async function tarOf(items: Item[]): Promise<Buffer> {
  const archive = pack();
  for (const { name, content = "", type = "file", linkname } of items) {
    if (type === "file") archive.entry({ name, type }, content);
    else archive.entry({ name, type, linkname });
  }
  archive.finalize();
  return buffer(archive);
}

const sha256 = (data: Buffer | string): string => createHash("sha256").update(data).digest("hex");

/** Classic store `docker save`: `<id>/layer.tar` entries, manifest.json at the end. */
async function legacySave(layers: Buffer[]): Promise<{ save: Buffer; names: string[] }> {
  const ids = layers.map((layer) => sha256(layer));
  const config = JSON.stringify({ rootfs: { type: "layers", diff_ids: ids.map((id) => `sha256:${id}`) } });
  const items: Item[] = [];
  layers.forEach((layer, i) => {
    items.push({ name: `${ids[i]}/`, type: "directory" });
    items.push({ name: `${ids[i]}/VERSION`, content: "1.0" });
    items.push({ name: `${ids[i]}/json`, content: JSON.stringify({ id: ids[i] }) });
    items.push({ name: `${ids[i]}/layer.tar`, content: layer });
  });
  items.push({ name: `${sha256(config)}.json`, content: config });
  const manifest = [{ Config: `${sha256(config)}.json`, Layers: ids.map((id) => `${id}/layer.tar`) }];
  items.push({ name: "manifest.json", content: JSON.stringify(manifest) });
  items.push({ name: "repositories", content: '{"x":{"1":"abc"}}' });
  return { save: await tarOf(items), names: ids.map((id) => `${id}/layer.tar`) };
}

/** containerd store `docker save`: blobs first, then index.json, manifest.json and oci-layout. */
async function ociSave(blobs: Buffer[]): Promise<{ save: Buffer; names: string[] }> {
  const names = blobs.map((blob) => `blobs/sha256/${sha256(blob)}`);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", rootfs: { type: "layers" } }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: names, config: sha256(config) }));
  const items: Item[] = [
    { name: "blobs/", type: "directory" },
    { name: "blobs/sha256/", type: "directory" },
    { name: `blobs/sha256/${sha256(config)}`, content: config },
    ...blobs.map((content, i) => ({ name: names[i] ?? "", content })),
    { name: `blobs/sha256/${sha256(manifest)}`, content: manifest },
    { name: "index.json", content: JSON.stringify({ schemaVersion: 2, manifests: [sha256(manifest)] }) },
    { name: "manifest.json", content: JSON.stringify([{ Layers: names }]) },
    { name: "oci-layout", content: '{"imageLayoutVersion":"1.0.0"}' },
  ];
  return { save: await tarOf(items), names };
}

/** Feeds `save` in small, odd-sized chunks so that every block boundary falls inside a chunk somewhere. */
async function scan(
  save: Buffer,
  options?: { maxFileBytes?: number },
): Promise<{ findings: SecretFinding[]; skipped: number }> {
  const scanner = new SecretScanner(options);
  const chunks: Buffer[] = [];
  for (let at = 0; at < save.length; at += 1000) chunks.push(save.subarray(at, at + 1000));
  await pipeline(Readable.from(chunks), scanner.input);
  return { findings: await scanner.result(), skipped: scanner.skippedLayers };
}

const PEM_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n";
const RSA_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----\n";

const FIRST: Item[] = [
  { name: "root/", type: "directory" },
  { name: "root/.ssh/", type: "directory" },
  { name: "root/.ssh/id_rsa", content: PEM_KEY },
  { name: "root/.ssh/id_rsa.pub", content: "ssh-rsa AAAAB3NzaC1yc2E dev@box\n" },
  { name: "root/.ssh/id_ecdsa", type: "symlink", linkname: "id_rsa" },
  { name: "home/dev/.env", content: "NODE_ENV=production\nGITHUB_TOKEN=ghp_abc123\n" },
  { name: "app/.env.example", content: "GITHUB_TOKEN=ghp_changeme\n" },
  { name: "app/.env.sample", content: "API_KEY=changeme\n" },
  { name: "app/.env.template", content: "SECRET=changeme\n" },
  { name: "app/.env.production", content: 'DB_PASSWORD=\nAPI_KEY=""\n# SECRET=x\nMODE=fast\n' },
  { name: "root/.bash_history", content: "aws configure\n" },
  { name: "home/dev/.bash_history", content: "" },
  { name: "home/dev/.npmrc", content: "registry=https://registry.npmjs.org/\n" },
  { name: "root/.npmrc", content: "//registry.npmjs.org/:_authToken=npm_abc\n" },
  { name: "app/README.md", content: "Put AKIAIOSFODNN7EXAMPLE in your ~/.aws/credentials\n" },
  { name: "etc/ssl/certs/server.pem", content: CERT },
  { name: "etc/ssl/private/server.key", content: RSA_KEY },
  { name: "root/.aws/credentials", content: "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n" },
];

const SECOND: Item[] = [
  { name: "root/.ssh/.wh.id_rsa" },
  { name: "app/.wh..wh..opq" },
  { name: "certs/.wh.old.p12" },
  { name: "root/.pypirc", content: "[pypi]\nusername = __token__\npassword = pypi-abc\n" },
  { name: "root/.netrc", content: "machine github.com login me password hunter2\n" },
  { name: "root/.docker/config.json", content: '{"auths":{"ghcr.io":{"auth":"bWU6aHVudGVyMg=="}}}' },
  { name: "home/dev/.docker/config.json", content: '{"auths":{},"credsStore":"desktop"}' },
  { name: "root/.git-credentials", content: "https://me:tok@github.com\n" },
  { name: "root/.kube/config", content: "users:\n- name: me\n  user:\n    token: Zq8vLm2Rt7Xw\n" },
  { name: "home/dev/.kube/config", content: "clusters: []\n" },
  { name: "certs/client.p12", content: randomBytes(64) },
  { name: "root/.config/gcloud/credentials.db", content: "SQLite format 3" },
  { name: "root/.config/gcloud/application_default_credentials.json", content: '{"type":"authorized_user"}' },
  { name: "root/.azure/accessTokens.json", content: "[]" },
  // An access key ID of the real shape (invented), assembled so repository scanners do not flag this file.
  {
    name: "home/dev/.env.local",
    content: `export AWS_ACCESS_KEY_ID=${["AKIA", "Q3ZT7XWJ5LR2NB4K"].join("")}\n`,
  },
  { name: "app/config.py", content: "KEY = 'AKIAABCDEFGHIJKLMNOP'\n" },
  { name: "root/.python_history", content: "import os\n" },
];

const THIRD: Item[] = [
  { name: "home/dev/.zsh_history", content: ": 1700000000:0;git push\n" },
  // Past ustar's 100-byte name field, so it travels in a PAX header or the prefix field.
  { name: `srv/${"deep/".repeat(30)}.netrc`, content: "machine x login y password z\n" },
];

function expected([first, second, third]: string[]): SecretFinding[] {
  const found = (path: string, kind: string, layer = "", preview?: string): SecretFinding => ({
    path,
    kind,
    layer,
    source: "file",
    ...(preview ? { preview } : {}),
  });
  return [
    found("certs/client.p12", "private key", second),
    found("etc/ssl/private/server.key", "private key", first),
    found("home/dev/.env", "token in .env file", first),
    found("home/dev/.env.local", "AWS access key", second, "AKIA…NB4K"),
    found("home/dev/.env.local", "token in .env file", second),
    found("home/dev/.zsh_history", "shell history", third),
    found("root/.aws/credentials", "cloud credentials", first),
    found("root/.azure/accessTokens.json", "cloud credentials", second),
    found("root/.bash_history", "shell history", first),
    found("root/.config/gcloud/application_default_credentials.json", "cloud credentials", second),
    found("root/.config/gcloud/credentials.db", "cloud credentials", second),
    found("root/.docker/config.json", "docker credentials", second, "bW…Mg=="),
    found("root/.git-credentials", "git credentials", second, "…"),
    found("root/.kube/config", "kubernetes credentials", second, "…"),
    found("root/.netrc", "netrc credentials", second),
    found("root/.npmrc", "npm credentials", first),
    found("root/.pypirc", "PyPI credentials", second),
    found("root/.python_history", "shell history", second),
    found("root/.ssh/id_rsa", "private key", first),
    found(`srv/${"deep/".repeat(30)}.netrc`, "netrc credentials", third),
  ];
}

describe("SecretScanner", () => {
  it("finds each kind of secret in a classic store save, and none of the look-alikes", async () => {
    const layers = await Promise.all([tarOf(FIRST), tarOf(SECOND), tarOf(THIRD)]);
    const { save, names } = await legacySave(layers);
    const { findings, skipped } = await scan(save);
    assert.deepEqual(findings, expected(names));
    assert.equal(skipped, 0);
  });

  it("finds the same in an OCI layout save with gzip, zstd and plain blobs and its index last", async () => {
    const [first, second, third] = await Promise.all([tarOf(FIRST), tarOf(SECOND), tarOf(THIRD)]);
    const blobs = [zlib.gzipSync(first), second, zlib.zstdCompressSync(third)];
    const { save, names } = await ociSave(blobs);
    const { findings, skipped } = await scan(save);
    assert.deepEqual(findings, expected(names));
    assert.equal(skipped, 0);
  });

  it("skips a corrupt layer, counts it, and still scans the others", async () => {
    const corrupt = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), randomBytes(64 * 1024)]);
    const good = await tarOf(THIRD);
    const { save, names } = await ociSave([corrupt, zlib.gzipSync(good)]);
    const { findings, skipped } = await scan(save);
    assert.equal(skipped, 1);
    assert.deepEqual(
      findings.map((finding) => [finding.path, finding.layer]),
      [
        ["home/dev/.zsh_history", names[1]],
        [`srv/${"deep/".repeat(30)}.netrc`, names[1]],
      ],
    );
  });

  it("counts a tar layer cut short, or a gzip one, as skipped", async () => {
    const whole = await tarOf([...FIRST, { name: "big.bin", content: randomBytes(8192) }]);
    const { save } = await legacySave([whole.subarray(0, whole.length - 6000)]);
    assert.equal((await scan(save)).skipped, 1);
    const gzipped = zlib.gzipSync(whole);
    const { save: oci } = await ociSave([gzipped.subarray(0, gzipped.length - 100)]);
    assert.equal((await scan(oci)).skipped, 1);
  });

  it("past maxFileBytes, reports only what the path alone proves: a big .pem bundle is not a key, a big history is", async () => {
    const bundle = CERT.repeat(100);
    const layer = await tarOf([
      { name: "etc/ssl/bundle.pem", content: bundle },
      { name: "etc/ssl/small.pem", content: CERT },
      { name: "app/.env", content: `${"# just comments\n".repeat(200)}` },
      { name: "root/.bash_history", content: "ls\n".repeat(1000) },
      { name: "app/data.bin", content: Buffer.alloc(100_000) },
    ]);
    const { save, names } = await legacySave([layer]);
    assert.deepEqual((await scan(save, { maxFileBytes: 1024 })).findings, [
      { path: "root/.bash_history", kind: "shell history", layer: names[0], source: "file" },
    ]);
    assert.deepEqual((await scan(save)).findings, [
      { path: "root/.bash_history", kind: "shell history", layer: names[0], source: "file" },
    ]);
  });

  it("rejects when the stream itself fails, but lets a stream that is no tar at all flow on", async () => {
    const { save } = await legacySave([
      await tarOf(FIRST),
      await tarOf([{ name: "a", content: randomBytes(1e6) }]),
    ]);
    for (const cut of [1024, save.length / 2]) {
      const broken = new SecretScanner();
      broken.input.on("error", () => {}); // a pipeline would take this one
      broken.input.write(save.subarray(0, cut));
      await new Promise((resolve) => setImmediate(resolve));
      broken.input.destroy(new Error("docker save died"));
      await assert.rejects(broken.result(), (error) => isVmError(error, "SECRET_SCAN_FAILED"));
    }

    const garbage = new SecretScanner();
    await pipeline(Readable.from([randomBytes(4096), randomBytes(1 << 20)]), garbage.input);
    await assert.rejects(garbage.result(), (error) => isVmError(error, "SECRET_SCAN_FAILED"));
  });

  it("streams a 64 MiB layer through with back-pressure and bounded memory", async () => {
    const gc = exposeGc();
    const size = 64 * 1024 * 1024;
    const layerSize = BLOCK + size + END_OF_ARCHIVE.length;
    const scanner = new SecretScanner();
    const { input } = scanner;
    // Writes as fast as `input` lets it, without a break unless it says so: without back-pressure, all
    // 64 MiB would pile up inside the scanner.
    const send = async (chunk: Buffer): Promise<void> => {
      if (!input.write(chunk)) await once(input, "drain");
    };
    gc();
    const before = process.memoryUsage().rss;
    let peak = before;
    await send(encodeHeader({ name: "aaaa/layer.tar", size: layerSize }));
    await send(encodeHeader({ name: "data/zeros.bin", size }));
    for (let sent = 0; sent < size; sent += 64 * 1024) {
      // Fresh, touched memory each time, so that chunks held on to show in rss.
      const wait = input.write(Buffer.allocUnsafe(64 * 1024).fill(0));
      if (!wait) await once(input, "drain");
      if (sent % (4 * 1024 * 1024) === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    }
    for (const chunk of [END_OF_ARCHIVE, padding(layerSize), END_OF_ARCHIVE]) await send(chunk);
    input.end();
    assert.deepEqual(await scanner.result(), []);
    assert.equal(scanner.skippedLayers, 0);
    const growth = (peak - before) / 1024 / 1024;
    console.log(`rss growth while streaming a 64 MiB layer: ${growth.toFixed(1)} MiB`);
    assert.ok(growth < 24, `rss grew by ${growth.toFixed(1)} MiB`);
  });

  it("measures the throughput of scanning a 256 MiB classic store save", async () => {
    // 16 layers of 16 MiB, each a mix of small and larger files and a candidate, sent in 64 KiB chunks. The
    // content is hex text, which gzip shrinks to about half, not far from what it does to binaries.
    const text = Buffer.from(randomBytes(2 * 1024 * 1024).toString("hex"));
    const content = (size: number, seed: number): Buffer => text.subarray(seed % 1024, (seed % 1024) + size);
    const files: Buffer[] = [];
    let bytes = 0;
    const add = (name: string, data: Buffer): void => {
      files.push(encodeHeader({ name, size: data.length }), data, padding(data.length));
      bytes += BLOCK + data.length + padding(data.length).length;
    };
    for (let i = 0; i < 2048; i++)
      add(`usr/lib/pkg${i % 64}/file${i}.so`, content(1000 + ((i * 997) % 6000), i));
    add("home/dev/.env", Buffer.from("API_TOKEN=abc\n"));
    for (let i = 0; bytes < 16 * 1024 * 1024 - 512 * 1024; i++)
      add(`opt/big/${i}.bin`, content(256 * 1024 + i, i));
    const layer = Buffer.concat([...files, END_OF_ARCHIVE]);
    const layers = 16;
    function* save(): Generator<Buffer> {
      for (let n = 0; n < layers; n++) {
        yield encodeHeader({ name: `${n.toString(16).padStart(64, "0")}/layer.tar`, size: layer.length });
        for (let at = 0; at < layer.length; at += 64 * 1024) yield layer.subarray(at, at + 64 * 1024);
        yield padding(layer.length);
      }
      yield END_OF_ARCHIVE;
    }
    const mib = (layers * layer.length) / 1024 / 1024;
    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
    let start = performance.now();
    await pipeline(Readable.from(save()), sink);
    const baseline = mib / ((performance.now() - start) / 1000);
    const scanner = new SecretScanner();
    start = performance.now();
    await pipeline(Readable.from(save()), scanner.input);
    const findings = await scanner.result();
    const seconds = (performance.now() - start) / 1000;
    assert.equal(findings.length, 1);
    console.log(
      `scanned ${mib.toFixed(0)} MiB in ${seconds.toFixed(2)} s: ${(mib / seconds).toFixed(0)} MiB/s ` +
        `(the same stream into a no-op Writable: ${baseline.toFixed(0)} MiB/s)`,
    );

    const compressed = zlib.gzipSync(layer, { level: 1 });
    const oci = await ociSave([compressed]);
    const gzipped = new SecretScanner();
    start = performance.now();
    await pipeline(Readable.from([oci.save]), gzipped.input);
    assert.equal((await gzipped.result()).length, 1);
    const gzipSeconds = (performance.now() - start) / 1000;
    start = performance.now();
    zlib.gunzipSync(compressed);
    const gunzipSeconds = (performance.now() - start) / 1000;
    const rate = (s: number): string => `${(layer.length / 1024 / 1024 / s).toFixed(0)} MiB/s`;
    console.log(
      `a gzip layer: ${rate(gzipSeconds)} of layer content (gunzipSync alone: ${rate(gunzipSeconds)})`,
    );
  });

  const image = "vm-test-fixture/busybox:1";
  it(`finds nothing in a real docker save of ${image}`, { skip: dockerUnavailable(image) }, async () => {
    const scanner = new SecretScanner();
    const child = spawn("docker", ["save", image], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = once(child, "exit");
    await pipeline(child.stdout, scanner.input);
    assert.deepEqual(await exited, [0, null]);
    assert.deepEqual(await scanner.result(), []);
    assert.equal(scanner.skippedLayers, 0);
  });
});

function dockerUnavailable(image: string): string | false {
  try {
    execFileSync("docker", ["info"], { stdio: "ignore", timeout: 20_000 });
  } catch {
    return "docker is unavailable (`docker info` failed)";
  }
  try {
    execFileSync("docker", ["image", "inspect", image], { stdio: "ignore", timeout: 20_000 });
  } catch {
    return `the engine has no image ${image}`;
  }
  return false;
}

function exposeGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}
