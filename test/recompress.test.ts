import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { availableEngines, docker } from "./helpers/engines.ts";
import { ensureBulkImage, ensureBusybox } from "./helpers/fixtures.ts";
import { cleanupRun, exportedSnapshot, makeProject, runVm, uniqueName } from "./helpers/vm.ts";

/**
 * Integrity is the content, not the compressor's framing: a snapshot file decompressed and compressed
 * again with ordinary tools is the same snapshot. Each recompressed file must verify, import on the other
 * engine and run; a flipped byte inside an entry is still refused, naming the entry and both digests.
 */
const engines = availableEngines();
const source = engines[0]!;
const target = engines.at(-1)!;
const dir = mkdtempSync(join(tmpdir(), "vm-recompress-"));
const homeA = join(dir, "a");
const homeB = join(dir, "b");
const name = uniqueName("recomp");
const marker = `marker-${name}`;
let tarFile = "";

const sh = (cmd: string, args: string[], input?: Buffer) =>
  execFileSync(cmd, args, { maxBuffer: 512 * 1024 * 1024, ...(input ? { input } : {}) });

before(async () => {
  const file = await exportedSnapshot(source, {
    dir,
    home: homeA,
    name,
    dockerfile: `FROM ${ensureBusybox(source)}\nRUN echo ${marker} > /marker\n`,
    out: join(dir, "good.snapshot.tar.gz"),
  });
  tarFile = join(dir, "good.snapshot.tar");
  writeFileSync(tarFile, gunzipSync(readFileSync(file)));
});

after(() => {
  for (const engine of new Set([source, target])) cleanupRun(engine);
  rmSync(dir, { recursive: true, force: true });
});

/** The ordinary tools a user (or a CI cache, or a file server) might recompress a snapshot file with. */
const recompressions: [string, (out: string) => void][] = [
  ["gzip -9", (out) => writeFileSync(out, sh("gzip", ["-9", "-c", tarFile]))],
  [
    "gzip of a named file (FNAME and MTIME set)",
    (out) => {
      const named = join(dir, "named.snapshot.tar");
      copyFileSync(tarFile, named);
      sh("gzip", ["-f", named]);
      copyFileSync(`${named}.gz`, out);
    },
  ],
  [
    "Python's gzip module",
    (out) =>
      sh("python3", [
        "-c",
        "import gzip,shutil,sys; shutil.copyfileobj(open(sys.argv[1],'rb'), gzip.open(sys.argv[2],'wb'))",
        tarFile,
        out,
      ]),
  ],
  [
    "several gzip members (split and concatenated)",
    (out) => {
      const bytes = readFileSync(tarFile);
      const third = Math.floor(bytes.length / 3);
      const parts = [bytes.subarray(0, third), bytes.subarray(third, 2 * third), bytes.subarray(2 * third)];
      writeFileSync(out, Buffer.concat(parts.map((part) => sh("gzip", ["-c"], part))));
    },
  ],
  ["zstd -19 --no-check", (out) => sh("zstd", ["-q", "-f", "-19", "--no-check", tarFile, "-o", out])],
  ["zstd, default level", (out) => sh("zstd", ["-q", "-f", tarFile, "-o", out])],
  ["plain tar", (out) => copyFileSync(tarFile, out)],
];

describe("recompressed snapshot files", () => {
  for (const [how, make] of recompressions) {
    it(`${how}: verifies, imports on the other engine and runs`, async () => {
      const out = join(dir, `${how.replace(/[^a-z0-9]+/gi, "-")}.snapshot`);
      make(out);
      const env = { XDG_CONFIG_HOME: homeB };
      const verified = await runVm(["snapshot", "verify", out], { cwd: dir, engine: target, env });
      assert.equal(verified.code, 0, verified.stderr);
      const as = `${name}-${recompressions.findIndex(([h]) => h === how)}`;
      const imported = await runVm(["snapshot", "import", out, "--name", as], {
        cwd: dir,
        engine: target,
        env,
      });
      assert.equal(imported.code, 0, imported.stderr);
      assert.equal(docker(target, ["run", "--rm", `vm-snapshot/global:${as}`, "cat", "/marker"]), marker);
      assert.equal(
        (await runVm(["snapshot", "delete", `@${as}`], { cwd: dir, engine: target, env })).code,
        0,
      );
    });
  }

  it("a flipped byte inside an entry of a recompressed file is refused, naming the entry and both digests", async () => {
    const tar = Buffer.from(readFileSync(tarFile));
    // The second entry's data (metadata/versions.json) starts after manifest.json's header, data and padding.
    const manifestSize = Number.parseInt(tar.toString("ascii", 124, 136).replace(/\0.*$/, "").trim(), 8);
    const second = 512 + Math.ceil(manifestSize / 512) * 512;
    const entry = tar.toString("utf8", second, second + 100).replace(/\0.*$/, "");
    tar[second + 512 + 2] = tar[second + 512 + 2]! ^ 0x01;
    const out = join(dir, "flipped.snapshot.tar.gz");
    writeFileSync(out, sh("gzip", ["-9", "-c"], tar));
    const res = await runVm(["snapshot", "import", out, "--name", `${name}-flip`], {
      cwd: dir,
      engine: target,
      env: { XDG_CONFIG_HOME: homeB },
    });
    assert.equal(res.code, 7, res.stderr);
    assert.match(
      res.stderr,
      new RegExp(
        `^Error: ${entry.replace(/[./]/g, "\\$&")} does not match the snapshot's checksums: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}\\n`,
      ),
    );
  });

  it("bytes after the compressed data are refused, recompressed or not", async () => {
    for (const [kind, make] of [
      ["gzip", (out: string) => writeFileSync(out, sh("gzip", ["-9", "-c", tarFile]))],
      ["zstd", (out: string) => sh("zstd", ["-q", "-f", "--no-check", tarFile, "-o", out])],
    ] as const) {
      for (const [tail, bytes] of [
        ["zeros", Buffer.alloc(1000)],
        ["garbage", Buffer.from("not part of the snapshot")],
      ] as const) {
        const out = join(dir, `trailing-${kind}-${tail}.snapshot`);
        make(out);
        appendFileSync(out, bytes);
        const res = await runVm(["snapshot", "verify", out], { cwd: dir, engine: target });
        assert.equal(res.code, 7, `${kind} + ${tail}: ${res.stdout}`);
        assert.match(
          res.stderr,
          /^Error: (\d+ bytes follow the end of the compressed data|The snapshot file cannot be read)/,
        );
      }
    }
  });

  it("a zstd window past the memory bound (zstd --long) is refused, saying how to recompress", async () => {
    const bulk = ensureBulkImage(source);
    const p = makeProject({ Dockerfile: `FROM ${bulk}\n` });
    const big = `${name}-big`;
    try {
      const env = { XDG_CONFIG_HOME: homeA };
      const made = await runVm(
        ["snapshot", "create", `@${big}`, "--from-dockerfile", join(p.dir, "Dockerfile")],
        {
          cwd: dir,
          engine: source,
          env,
        },
      );
      assert.equal(made.code, 0, made.stderr);
      const plain = join(dir, "big.snapshot.tar");
      assert.equal(
        (await runVm(["snapshot", "export", `@${big}`, "-o", plain], { cwd: dir, engine: source, env })).code,
        0,
      );
      const long = join(dir, "big-long.snapshot.tar.zst");
      sh("zstd", ["-q", "-f", "--long=27", plain, "-o", long]);
      const res = await runVm(["snapshot", "verify", long], { cwd: dir, engine: target });
      assert.equal(res.code, 7, res.stdout);
      assert.match(res.stderr, /zstd frames ask for a window larger than the 32 MiB vm decodes/);
      assert.match(res.stderr, /Hint: Recompress it with a standard level: zstd -d -c FILE \| zstd -19/);
    } finally {
      p.cleanup();
    }
  });
});
