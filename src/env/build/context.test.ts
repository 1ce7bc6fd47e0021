import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import tar from "tar-stream";
import { packBuildContext } from "./context.ts";

interface TarEntry {
  type: string;
  content?: string;
  linkname?: string;
  mode?: number;
}

/** Reads a tar stream back into name → entry, in the order the entries came. */
async function readTar(stream: Readable): Promise<Map<string, TarEntry>> {
  const extract = tar.extract();
  stream.pipe(extract);
  const entries = new Map<string, TarEntry>();
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const { name, type, linkname, mode } = entry.header;
    const out: TarEntry = { type: type ?? "file" };
    if (type === "file") out.content = Buffer.concat(chunks).toString("utf8");
    if (type === "symlink") out.linkname = linkname ?? "";
    if (mode !== undefined) out.mode = mode;
    assert.ok(!entries.has(name), `duplicate entry ${name}`);
    entries.set(name, out);
  }
  return entries;
}

describe("packBuildContext", () => {
  let root: string;
  let ctx: string;
  const dockerfileText = "FROM debian:bookworm\nRUN true\n";

  before(() => {
    root = mkdtempSync(join(tmpdir(), "vm-ctx-"));
    ctx = join(root, "ctx");
    mkdirSync(join(ctx, "src", "lib"), { recursive: true });
    mkdirSync(join(ctx, "node_modules", "pkg"), { recursive: true });
    mkdirSync(join(ctx, "docker"));
    writeFileSync(join(ctx, "Dockerfile"), dockerfileText);
    writeFileSync(join(ctx, "docker", "Dockerfile.dev"), "FROM scratch\n");
    writeFileSync(join(ctx, "README.md"), "# hi\n");
    writeFileSync(join(ctx, "src", "main.ts"), "console.log(1);\n");
    writeFileSync(join(ctx, "src", "lib", "util.ts"), "export {};\n");
    writeFileSync(join(ctx, "src", "debug.log"), "noise\n");
    writeFileSync(join(ctx, "node_modules", "pkg", "index.js"), "module.exports = 1;\n");
    writeFileSync(join(ctx, "run.sh"), "#!/bin/sh\n");
    chmodSync(join(ctx, "run.sh"), 0o755);
    writeFileSync(join(ctx, ".dockerignore"), "node_modules\n**/*.log\n");
    symlinkSync("src/main.ts", join(ctx, "link-to-main"));
    writeFileSync(join(root, "Dockerfile.outside"), dockerfileText);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it("packs files, folders and symlinks, leaving out what .dockerignore excludes", async () => {
    const packed = await packBuildContext(ctx, join(ctx, "Dockerfile"));
    const entries = await readTar(packed.stream);
    await packed.done;
    assert.deepEqual(
      [...entries.keys()],
      [
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "docker",
        "docker/Dockerfile.dev",
        "link-to-main",
        "run.sh",
        "src",
        "src/lib",
        "src/lib/util.ts",
        "src/main.ts",
      ],
    );
    assert.equal(entries.get("Dockerfile")?.content, dockerfileText);
    assert.equal(entries.get("src/main.ts")?.content, "console.log(1);\n");
    assert.equal(entries.get("src/lib/util.ts")?.content, "export {};\n");
    assert.equal(entries.get("src")?.type, "directory");
    assert.equal(entries.get("src/lib")?.type, "directory");
    assert.equal(entries.get("link-to-main")?.type, "symlink");
    assert.equal(entries.get("link-to-main")?.linkname, "src/main.ts");
    assert.equal((entries.get("run.sh")?.mode ?? 0) & 0o777, 0o755);
  });

  it("refers to a Dockerfile inside the context by its context-relative path", async () => {
    const packed = await packBuildContext(ctx, join(ctx, "Dockerfile"));
    assert.equal(packed.dockerfile, "Dockerfile");
    await readTar(packed.stream);

    const nested = await packBuildContext(ctx, join(ctx, "docker", "Dockerfile.dev"));
    assert.equal(nested.dockerfile, "docker/Dockerfile.dev");
    const entries = await readTar(nested.stream);
    assert.ok(![...entries.keys()].some((name) => name.startsWith(".vm-dockerfile-")));
  });

  it("adds a Dockerfile outside the context under a .vm-dockerfile-<hash> name", async () => {
    const packed = await packBuildContext(ctx, join(root, "Dockerfile.outside"));
    const hash = createHash("sha256").update(dockerfileText).digest("hex").slice(0, 12);
    assert.equal(packed.dockerfile, `.vm-dockerfile-${hash}`);
    const entries = await readTar(packed.stream);
    await packed.done;
    assert.deepEqual(entries.get(packed.dockerfile), { type: "file", content: dockerfileText, mode: 0o644 });
    assert.equal([...entries.keys()].at(-1), packed.dockerfile);
    assert.ok(entries.has("src/main.ts"));
  });

  it("adds a Dockerfile that .dockerignore excludes under the private name", async () => {
    const ignored = join(root, "ignored");
    mkdirSync(ignored);
    writeFileSync(join(ignored, "Dockerfile"), "FROM alpine\n");
    writeFileSync(join(ignored, "a.txt"), "a\n");
    writeFileSync(join(ignored, ".dockerignore"), "Dockerfile\n");
    const packed = await packBuildContext(ignored, join(ignored, "Dockerfile"));
    assert.match(packed.dockerfile, /^\.vm-dockerfile-[0-9a-f]{12}$/);
    const entries = await readTar(packed.stream);
    assert.deepEqual([...entries.keys()], [".dockerignore", "a.txt", packed.dockerfile]);
    assert.equal(entries.get(packed.dockerfile)?.content, "FROM alpine\n");
  });

  it("walks into an excluded folder an exception re-includes from, without its folder entry", async () => {
    const except = join(root, "except");
    mkdirSync(join(except, "vendor"), { recursive: true });
    writeFileSync(join(except, "Dockerfile"), "FROM alpine\n");
    writeFileSync(join(except, "vendor", "keep.txt"), "keep\n");
    writeFileSync(join(except, "vendor", "drop.txt"), "drop\n");
    writeFileSync(join(except, ".dockerignore"), "vendor\n!vendor/keep.txt\n");
    const packed = await packBuildContext(except, join(except, "Dockerfile"));
    const entries = await readTar(packed.stream);
    assert.deepEqual([...entries.keys()], [".dockerignore", "Dockerfile", "vendor/keep.txt"]);
    assert.equal(entries.get("vendor/keep.txt")?.content, "keep\n");
  });

  it("packs everything when there is no .dockerignore", async () => {
    const plain = join(root, "plain");
    mkdirSync(join(plain, "node_modules"), { recursive: true });
    writeFileSync(join(plain, "Dockerfile"), "FROM alpine\n");
    writeFileSync(join(plain, "node_modules", "x.js"), "x\n");
    writeFileSync(join(plain, "empty"), "");
    const packed = await packBuildContext(plain, join(plain, "Dockerfile"));
    const entries = await readTar(packed.stream);
    assert.deepEqual([...entries.keys()], ["Dockerfile", "empty", "node_modules", "node_modules/x.js"]);
    assert.equal(entries.get("empty")?.content, "");
  });

  it("rejects when a Dockerfile outside the context cannot be read", async () => {
    await assert.rejects(packBuildContext(ctx, join(root, "no-such-Dockerfile")), { code: "ENOENT" });
  });
});
