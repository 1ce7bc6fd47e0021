import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readEntries, resealed, writeEntries, type Entry } from "./helpers/archives.ts";
import { availableEngines, docker, dockerTry, type TestEngine } from "./helpers/engines.ts";
import { ensureBulkImage, ensureBusybox, ensureTextImage } from "./helpers/fixtures.ts";
import {
  cleanupRun,
  makeProject,
  runImages,
  runVm,
  uniqueName,
  VM_BIN,
  RUN_ID,
  TEST_LABEL,
  type VmResult,
} from "./helpers/vm.ts";

const engines = availableEngines();
const machineA = { engine: engines[0]!, home: mkdtempSync(join(tmpdir(), "vm-home-a-")) };
const machineB = { engine: engines[1] ?? engines[0]!, home: mkdtempSync(join(tmpdir(), "vm-home-b-")) };
type Machine = typeof machineA;

const files = mkdtempSync(join(tmpdir(), "vm-files-"));
const projects: { cleanup: () => void }[] = [];
function project(contents: Record<string, string>) {
  const p = makeProject(contents);
  projects.push(p);
  return p;
}
function on(
  machine: Machine,
  args: string[],
  cwd: string,
  extra: Record<string, string> = {},
  input?: string,
): Promise<VmResult> {
  return runVm(args, {
    cwd,
    engine: machine.engine,
    env: { XDG_CONFIG_HOME: machine.home, ...extra },
    ...(input !== undefined ? { input } : {}),
  });
}

/** What an import must leave behind when it fails: no snapshot entry, no tag, no temporary files. */
function assertNothingImported(machine: Machine, name: string): void {
  assert.equal(existsSync(join(machine.home, "vm", "snapshots", "global", name)), false, "no snapshot entry");
  assert.notEqual(
    dockerTry(machine.engine, ["image", "inspect", `vm-snapshot/global:${name}`]).status,
    0,
    "no engine tag",
  );
  const staging = join(machine.home, "vm", "snapshots", ".staging");
  assert.deepEqual(existsSync(staging) ? readdirSync(staging) : [], [], "no staging leftovers");
}

after(() => {
  for (const m of [machineA, machineB]) {
    cleanupRun(m.engine);
    rmSync(m.home, { recursive: true, force: true });
  }
  for (const p of projects) p.cleanup();
  rmSync(files, { recursive: true, force: true });
});

for (const [from, to, label] of [
  [machineA, machineB, "A to B"],
  [machineB, machineA, "B to A"],
] as const) {
  describe(`the design document's two-machine story, ${label} (${from.engine.name} ${from.engine.imageStore} -> ${to.engine.name} ${to.engine.imageStore})`, () => {
    const name = uniqueName("vibe");
    const archive = join(files, `${name}.snapshot.tar.gz`);

    it("machine A: build from a Dockerfile, create, snapshot create, export", async () => {
      const image = ensureBusybox(from.engine);
      const builder = project({
        "Dockerfile.vibe": `FROM ${image}\nRUN mkdir -p /opt/vibe && echo "toolchain 1.0" > /opt/vibe/VERSION\n`,
        "vm-base.yaml": `version: 1.2.1\nprovider: docker\nvm:\n  box: ./Dockerfile.vibe\nproject:\n  name: ${uniqueName("builder")}\n`,
      });
      assert.equal((await on(from, ["create", "--config", "vm-base.yaml"], builder.dir)).code, 0);
      await on(
        from,
        ["exec", "--config", "vm-base.yaml", "--", "sh", "-c", "echo configured-by-hand > /opt/vibe/state"],
        builder.dir,
      );
      const snap = await on(
        from,
        [
          "snapshot",
          "create",
          name,
          "--description",
          "Base vibe image",
          "--quiesce",
          "--config",
          "vm-base.yaml",
        ],
        builder.dir,
      );
      assert.equal(snap.code, 0, snap.stderr);
      const exported = await on(
        from,
        ["snapshot", "export", name, "--output", archive, "--config", "vm-base.yaml"],
        builder.dir,
      );
      assert.equal(exported.code, 0, exported.stderr);
      assert.match(exported.stdout, new RegExp(`Exported ${name} to ${archive}: .* in [\\d.]+ s`));
      assert.match(exported.stdout, /vm snapshot import /);
      assert.match(exported.stdout, new RegExp(`vm.box: "@${name}"`));
      assert.ok(statSync(archive).size > 0);
      assert.equal((await on(from, ["destroy", "-f", "--config", "vm-base.yaml"], builder.dir)).code, 0);
    });

    it("machine B: import, list, then vm create with box: @name sees the content", async () => {
      const imported = await on(to, ["snapshot", "import", archive], tmpdir());
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stdout, new RegExp(`Imported snapshot @${name}`));
      const list = await on(to, ["snapshot", "list"], tmpdir());
      assert.match(list.stdout, new RegExp(`@${name}\\s+base\\s+.*Base vibe image`));
      const user = project({
        "vm.yaml": `version: 1.2.1\nprovider: docker\nvm:\n  box: @${name}\n  memory: 512mb\nproject:\n  name: ${uniqueName("my-project")}\n`,
        "app.txt": "app\n",
      });
      const created = await on(to, ["create"], user.dir);
      assert.equal(created.code, 0, created.stderr);
      const seen = await on(
        to,
        ["exec", "--", "cat", "/opt/vibe/VERSION", "/opt/vibe/state", "app.txt"],
        user.dir,
      );
      assert.equal(seen.stdout, "toolchain 1.0\nconfigured-by-hand\napp\n");
      assert.equal((await on(to, ["destroy", "-f"], user.dir)).code, 0);
    });
  });
}

describe("--include-volumes carries a project's named volumes to the other machine", () => {
  it("exports volumes/<name>.tar, imports it, and seeds a new environment's volume of that name", async () => {
    const name = uniqueName("withvol");
    const maker = project({
      "vm.yaml": `project:\n  name: ${uniqueName("volmaker")}\nvm:\n  box: ${ensureBusybox(machineA.engine)}\nvolumes: ["cache:/cache"]\n`,
    });
    assert.equal((await on(machineA, ["create"], maker.dir)).code, 0);
    await on(
      machineA,
      ["exec", "--", "sh", "-c", "mkdir -p /cache/deep && echo warmed > /cache/deep/file"],
      maker.dir,
    );
    assert.equal((await on(machineA, ["snapshot", "create", `@${name}`], maker.dir)).code, 0);
    const file = join(files, `${name}.snapshot.tar.gz`);
    const exported = await on(
      machineA,
      ["snapshot", "export", `@${name}`, "--include-volumes", "-o", file],
      maker.dir,
    );
    assert.equal(exported.code, 0, exported.stderr);
    assert.ok((await readEntries(file)).some((e) => e.name === "volumes/cache.tar"));
    assert.equal((await on(machineA, ["destroy", "-f"], maker.dir)).code, 0);

    const imported = await on(machineB, ["snapshot", "import", file], files);
    assert.equal(imported.code, 0, imported.stderr);
    const user = project({
      "vm.yaml": `project:\n  name: ${uniqueName("voluser")}\nvm:\n  box: "@${name}"\nvolumes: ["cache:/cache"]\n`,
    });
    const created = await on(machineB, ["create"], user.dir);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stderr, /Volumes cache start with the snapshot's data/);
    assert.equal(
      (await on(machineB, ["exec", "--", "cat", "/cache/deep/file"], user.dir)).stdout,
      "warmed\n",
    );
    assert.equal((await on(machineB, ["destroy", "-f"], user.dir)).code, 0);
    assert.equal((await on(machineB, ["snapshot", "delete", `@${name}`], files)).code, 0);
    assert.equal(
      dockerTry(machineB.engine, ["volume", "inspect", `vm-snapshot-${name}-cache`]).status,
      1,
      "delete removes the snapshot's volume",
    );
  });
});

describe("snapshot files", () => {
  const machine = machineA;
  const name = uniqueName("files");
  const base = join(files, "base.snapshot.tar.gz");
  // An image machine B never gets, so that importing a damaged copy of it really reads the image part.
  const fresh = join(files, "fresh.snapshot.tar.gz");

  before(async () => {
    const image = ensureBusybox(machine.engine);
    const p = project({
      Dockerfile: `FROM ${image}\nRUN echo payload > /payload\n`,
      "Dockerfile.fresh": `FROM ${image}\nRUN echo ${name} > /fresh\n`,
    });
    const res = await on(
      machine,
      ["snapshot", "create", `@${name}`, "--from-dockerfile", "Dockerfile", "-d", "files test"],
      p.dir,
    );
    assert.equal(res.code, 0, res.stderr);
    assert.equal((await on(machine, ["snapshot", "export", `@${name}`, "-o", base], files)).code, 0);
    const other = await on(
      machine,
      ["snapshot", "create", `@${name}-fresh`, "--from-dockerfile", "Dockerfile.fresh", "-d", "files test"],
      p.dir,
    );
    assert.equal(other.code, 0, other.stderr);
    assert.equal((await on(machine, ["snapshot", "export", `@${name}-fresh`, "-o", fresh], files)).code, 0);
  });

  for (const [compression, file, magic] of [
    ["gzip", "c.snapshot.tar.gz", "1f8b0800"],
    ["zstd", "c.snapshot.tar.zst", "28b52ffd"],
    ["none", "c.snapshot.tar", "6d616e69"],
  ] as const) {
    it(`exports and imports with --compression ${compression}`, async () => {
      const out = join(files, file);
      const res = await on(
        machine,
        ["snapshot", "export", `@${name}`, "--compression", compression, "-o", out],
        files,
      );
      assert.equal(res.code, 0, res.stderr);
      assert.equal(readFileSync(out).subarray(0, 4).toString("hex"), magic);
      const verify = await on(machine, ["snapshot", "verify", out], files);
      assert.equal(verify.code, 0, verify.stderr);
      assert.match(
        verify.stdout,
        new RegExp(`OK: .* is intact \\(7 entries, every sha256 matched; ${compression}\\)`),
      );
      const imported = await on(
        machineB,
        ["snapshot", "import", out, "--name", `${name}-${compression}`],
        files,
      );
      assert.equal(imported.code, 0, imported.stderr);
    });
  }

  it("--compress sets the level: 9 (gzip) and 19 (zstd) write smaller files than 1; out-of-range levels are refused", async () => {
    const p = project({ Dockerfile: `FROM ${ensureTextImage(machine.engine)}\n` });
    const text = `${name}-text`;
    const created = await on(
      machine,
      ["snapshot", "create", `@${text}`, "--from-dockerfile", "Dockerfile"],
      p.dir,
    );
    assert.equal(created.code, 0, created.stderr);
    const exportAt = (compression: string, level: number, out: string) =>
      on(
        machine,
        ["snapshot", "export", `@${text}`, "--compression", compression, "--compress", `${level}`, "-o", out],
        files,
      );
    for (const [compression, ext, max] of [
      ["gzip", "tar.gz", 9],
      ["zstd", "tar.zst", 19],
    ] as const) {
      const sizes: number[] = [];
      for (const level of [1, max]) {
        const out = join(files, `level-${level}.snapshot.${ext}`);
        const res = await exportAt(compression, level, out);
        assert.equal(res.code, 0, res.stderr);
        const verify = await on(machine, ["snapshot", "verify", out], files);
        assert.equal(verify.code, 0, verify.stderr);
        assert.match(verify.stdout, new RegExp(`OK: .* is intact \\(.*; ${compression}\\)`));
        sizes.push(statSync(out).size);
      }
      const [fast, small] = sizes as [number, number];
      // Two exports at one level differ by a few bytes (the manifest's times); levels by 5% (gzip) or more.
      assert.ok(
        small < fast * 0.98,
        `${compression}: --compress ${max} wrote ${small} bytes, --compress 1 ${fast}: not 2% smaller`,
      );
      for (const level of [0, max + 1]) {
        const out = join(files, `refused.snapshot.${ext}`);
        const res = await exportAt(compression, level, out);
        assert.equal(res.code, 2, res.stderr);
        assert.match(
          res.stderr,
          new RegExp(`--compress must be a whole number from 1 to ${max} for ${compression}, not '${level}'`),
        );
        assert.equal(existsSync(out), false);
      }
    }
  });

  it("an --output ending in .zst picks zstd without --compression", async () => {
    const out = join(files, "auto.snapshot.tar.zst");
    assert.equal((await on(machine, ["snapshot", "export", `@${name}`, "-o", out], files)).code, 0);
    assert.equal(readFileSync(out).subarray(0, 4).toString("hex"), "28b52ffd");
  });

  it("streams through stdout and stdin: export -o - | import -", () => {
    const env = (m: Machine) => ({
      ...process.env,
      DOCKER_HOST: m.engine.host,
      XDG_CONFIG_HOME: m.home,
      VM_LABELS: `${TEST_LABEL}=${RUN_ID}`,
    });
    const exporter = spawnSync(VM_BIN, ["snapshot", "export", `@${name}`, "-o", "-"], {
      env: env(machine),
      maxBuffer: 256 * 1024 * 1024,
    });
    assert.equal(exporter.status, 0, String(exporter.stderr));
    assert.match(String(exporter.stderr), /Exported .* to standard output/);
    const importer = spawnSync(VM_BIN, ["snapshot", "import", "-", "--name", `${name}-piped`], {
      env: env(machineB),
      input: exporter.stdout,
    });
    assert.equal(importer.status, 0, String(importer.stderr));
    assert.match(String(importer.stdout), new RegExp(`Imported snapshot @${name}-piped`));
  });

  it("refuses a name conflict with the design document's words; --name renames; --force replaces", async () => {
    const first = await on(machineB, ["snapshot", "import", base, "--name", `${name}-conflict`], files);
    assert.equal(first.code, 0, first.stderr);
    const again = await on(machineB, ["snapshot", "import", base, "--name", `${name}-conflict`], files);
    assert.equal(again.code, 5);
    assert.match(
      again.stderr,
      new RegExp(
        `^Error: Snapshot '${name}-conflict' already exists\\nHint: Use --force to overwrite or --name to import with different name\\n$`,
      ),
    );
    const forced = await on(
      machineB,
      ["snapshot", "import", base, "--name", `${name}-conflict`, "--force"],
      files,
    );
    assert.equal(forced.code, 0, forced.stderr);
    const renamed = JSON.parse(
      (await on(machineB, ["snapshot", "inspect", `@${name}-conflict`, "--json"], files)).stdout,
    ) as { name: string; image_tag: string };
    assert.equal(renamed.name, `${name}-conflict`);
    assert.equal(renamed.image_tag, `vm-snapshot/global:${name}-conflict`);
    assert.equal(
      dockerTry(machineB.engine, ["image", "inspect", `vm-snapshot/global:${name}-conflict`]).status,
      0,
    );
  });

  it("re-importing an image the engine already holds skips the load", async () => {
    const res = await on(machineB, ["snapshot", "import", base, "--name", `${name}-again`], files);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stdout,
      /the engine already had this image, so only the file's head was read and checked/,
    );
  });

  it("a plain tar + docker load of an exported file works without vm", () => {
    const dir = mkdtempSync(join(files, "plain-"));
    const untar = spawnSync("tar", ["-xzf", base, "-C", dir]);
    assert.equal(untar.status, 0, String(untar.stderr));
    assert.deepEqual(readdirSync(dir).sort(), [
      "checksums.json",
      "docs",
      "images",
      "manifest.json",
      "metadata",
    ]);
    const load = docker(machineB.engine, ["load", "-i", join(dir, "images", "base.tar")]);
    const id = /Loaded image ID: (sha256:[0-9a-f]+)/.exec(load)?.[1];
    assert.ok(id, load);
    assert.equal(docker(machineB.engine, ["run", "--rm", "--entrypoint", "cat", id, "/payload"]), "payload");
    assert.match(readFileSync(join(dir, "docs", "README.md"), "utf8"), /docker load -i images\/base.tar/);
  });

  it("inspect FILE and verify FILE work without an engine", async () => {
    const noEngine = { DOCKER_HOST: "unix:///tmp/vm-no-engine.sock" };
    const inspect = await on(machine, ["snapshot", "inspect", base], files, noEngine);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, new RegExp(`Snapshot file: ${name} \\(format 1, gzip\\)`));
    assert.match(inspect.stdout, /Description: +files test/);
    const verify = await on(machine, ["snapshot", "verify", base], files, noEngine);
    assert.equal(verify.code, 0, verify.stderr);
  });

  describe("platform mismatch", () => {
    const foreign = join(files, "foreign.snapshot.tar.gz");
    before(async () => {
      await writeEntries(
        foreign,
        resealed(await readEntries(base), (m) => (m.platform = "linux/arm64")),
      );
    });

    it("without a terminal: refused, naming both platforms, unless --yes", async () => {
      const res = await on(machineB, ["snapshot", "import", foreign, "--name", `${name}-arm`], files);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /Snapshot built for linux\/arm64, current platform is linux\/amd64/);
      assert.match(res.stderr, /--yes/);
      assertNothingImported(machineB, `${name}-arm`);
      const yes = await on(
        machineB,
        ["snapshot", "import", foreign, "--name", `${name}-arm`, "--yes"],
        files,
      );
      assert.equal(yes.code, 0, yes.stderr);
      assert.match(yes.stderr, /Warning: Snapshot built for linux\/arm64, current platform is linux\/amd64/);
    });

    for (const [answer, code] of [
      ["n", 1],
      ["y", 0],
    ] as const) {
      it(`on a terminal: asks Continue? [y/N] and answering ${answer} ${code === 0 ? "imports" : "cancels"}`, async () => {
        const target = `${name}-tty-${answer}`;
        const command = `${VM_BIN} snapshot import ${foreign} --name ${target}`;
        const res = await new Promise<{ code: number; out: string }>((resolve) => {
          const child = spawn("script", ["-qec", command, "/dev/null"], {
            env: {
              ...process.env,
              DOCKER_HOST: machineB.engine.host,
              XDG_CONFIG_HOME: machineB.home,
              VM_LABELS: `${TEST_LABEL}=${RUN_ID}`,
            },
          });
          let out = "";
          let answered = false;
          // vm may have exited by the time the write lands (it reads one line and goes on).
          child.stdin.on("error", () => {});
          child.stdout.on("data", (d: Buffer) => {
            out += d.toString();
            if (!answered && out.includes("Continue? [y/N]")) {
              answered = true;
              child.stdin.write(`${answer}\r`);
            }
          });
          child.on("close", (c) => resolve({ code: c ?? -1, out }));
        });
        assert.match(
          res.out,
          /Warning: Snapshot built for linux\/arm64, current platform is linux\/amd64\s+This may not work correctly\. Continue\? \[y\/N\]/,
        );
        assert.equal(res.code, code, res.out);
        if (code !== 0) assertNothingImported(machineB, target);
      });
    }
  });

  describe("damaged and hostile files are refused and leave nothing behind", () => {
    const withManifest = (e: Entry[], data: Buffer) =>
      e.map((x) => (x.name === "manifest.json" ? { ...x, data } : x));
    const cases: [string, (entries: Entry[]) => Entry[], RegExp, ((gz: Buffer) => Buffer)?][] = [
      [
        "a byte changed inside the image",
        (e) =>
          e.map((x) =>
            x.name === "images/base.tar" ? { ...x, data: flip(x.data, Math.floor(x.data.length / 2)) } : x,
          ),
        /images\/base\.tar.*expected .* got/,
      ],
      [
        "a changed description (manifest tampered, checksums not)",
        (e) =>
          e.map((x) =>
            x.name === "manifest.json"
              ? { ...x, data: Buffer.from(x.data.toString().replace("files test", "evil test")) }
              : x,
          ),
        /manifest\.json does not match the snapshot's checksums: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/,
      ],
      [
        "a changed metadata document",
        (e) =>
          e.map((x) =>
            x.name === "metadata/versions.json"
              ? { ...x, data: Buffer.from('{"languages":{"evil":"1"}}\n') }
              : x,
          ),
        /metadata\/versions\.json does not match/,
      ],
      ["the checksums removed (truncated)", (e) => e.filter((x) => x.name !== "checksums.json"), /truncated/],
      [
        "an entry climbing out with ..",
        (e) => [...e.slice(0, 2), { name: "../evil", data: Buffer.from("x") }, ...e.slice(2)],
        /Unexpected entry '\.\.\/evil'/,
      ],
      [
        "an absolute path",
        (e) => [...e.slice(0, 2), { name: "/etc/evil", data: Buffer.from("x") }, ...e.slice(2)],
        /Unexpected entry '\/etc\/evil'/,
      ],
      [
        "a symlink",
        (e) => [
          ...e.slice(0, 2),
          { name: "metadata/link", data: Buffer.alloc(0), type: "symlink", linkname: "/etc/passwd" },
          ...e.slice(2),
        ],
        /is a symlink; snapshot files hold only regular files/,
      ],
      [
        "a hard link",
        (e) => [
          ...e.slice(0, 2),
          { name: "docs/hard", data: Buffer.alloc(0), type: "link", linkname: "manifest.json" },
          ...e.slice(2),
        ],
        /is a link; snapshot files hold only regular files/,
      ],
      [
        "a device",
        (e) => [
          ...e.slice(0, 2),
          { name: "docs/dev", data: Buffer.alloc(0), type: "character-device" },
          ...e.slice(2),
        ],
        /is a character-device/,
      ],
      [
        "a FIFO",
        (e) => [...e.slice(0, 2), { name: "docs/fifo", data: Buffer.alloc(0), type: "fifo" }, ...e.slice(2)],
        /is a fifo; snapshot files hold only regular files/,
      ],
      [
        "a manifest that is not JSON",
        (e) => withManifest(e, Buffer.from('{"format": "vm-snapshot", oops')),
        /manifest\.json is not valid JSON/,
      ],
      [
        "a manifest of the wrong types",
        (e) => resealed(e, (m) => (m.size_bytes = "very big")),
        /manifest\.json is not a vm snapshot manifest \(size_bytes: /,
      ],
      [
        "a huge manifest",
        (e) => withManifest(e, Buffer.from(`{"pad": "${"x".repeat(2 * 1024 * 1024)}"}`)),
        /Entry 'manifest\.json' is \d+ bytes, more than the 1048576 a snapshot file allows/,
      ],
      [
        "entries reordered (a document after the image)",
        (e) => {
          const doc = e.findIndex((x) => x.name === "metadata/versions.json");
          const moved = e.filter((_, i) => i !== doc);
          const image = moved.findIndex((x) => x.name === "images/base.tar");
          return [...moved.slice(0, image + 1), e[doc]!, ...moved.slice(image + 1)];
        },
        /Entry 'metadata\/versions\.json' is out of order/,
      ],
      [
        "bytes after the end of the compressed data",
        (e) => e,
        /1000 bytes follow the end of the compressed data/,
        (gz) => Buffer.concat([gz, Buffer.alloc(1000)]),
      ],
      [
        "a decompression bomb (gigabytes of zeros from a few megabytes)",
        (e) => e,
        /expands to more than \d+ bytes from \d+ compressed bytes, past twice the \d+-byte image its manifest describes: it looks like a decompression bomb/,
        (gz) => {
          const zeros = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
          return Buffer.concat([gz, ...Array.from({ length: 48 }, () => zeros)]);
        },
      ],
      [
        "a decompression bomb whose manifest claims a terabyte image",
        (e) => resealed(e, (m) => (m.size_bytes = 1e12)),
        /expands to more than \d+ bytes from \d+ compressed bytes, more than 500 times the compressed size: it looks like a decompression bomb/,
        (gz) => {
          const zeros = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
          return Buffer.concat([gz, ...Array.from({ length: 48 }, () => zeros)]);
        },
      ],
      ["a duplicated entry", (e) => [...e.slice(0, 2), e[1]!, ...e.slice(2)], /appears twice/],
      ["manifest.json not first", (e) => [e[1]!, e[0]!, ...e.slice(2)], /must start with manifest\.json/],
      [
        "a snapshot name that escapes the store",
        (e) => resealed(e, (m) => (m.snapshot_name = "../../escape")),
        /is not a valid snapshot name/,
      ],
      [
        "a volume entry the manifest does not list",
        (e) => [...e.slice(0, 6), { name: "volumes/sneaky.tar", data: Buffer.alloc(1024) }, ...e.slice(6)],
        /volumes\/sneaky\.tar' is not a volume the manifest lists/,
      ],
      [
        "a newer format version",
        (e) => resealed(e, (m) => (m.version = 99)),
        /format version 99.*\n.*Upgrade vm/,
      ],
    ];
    after(() =>
      console.log(
        `hostile archive cases tried: ${cases.length} built from a real export (${cases.map((c) => c[0]).join("; ")}), plus a truncated file, a non-archive and --verify`,
      ),
    );
    for (const [title, alter, message, finish] of cases) {
      it(title, async () => {
        const file = join(files, `bad-${title.replace(/\W+/g, "-")}.snapshot.tar.gz`);
        await writeEntries(file, alter(await readEntries(fresh)));
        if (finish) writeFileSync(file, finish(readFileSync(file)));
        const target = `${name}-bad`;
        const imagesBefore = runImages(machineB.engine);
        const res = await on(machineB, ["snapshot", "import", file, "--name", target], files);
        assert.notEqual(res.code, 0);
        assert.match(res.stderr, message);
        assert.doesNotMatch(res.stderr, /internal error|at .*\.ts:\d+/);
        assertNothingImported(machineB, target);
        if (!title.includes("escape")) assert.equal(runImages(machineB.engine), imagesBefore);
        const verify = await on(machineB, ["snapshot", "verify", file], files);
        assert.notEqual(verify.code, 0, "verify refuses it too");
      });
    }

    it("a truncated file", async () => {
      const file = join(files, "truncated.snapshot.tar.gz");
      const bytes = readFileSync(fresh);
      writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      const res = await on(machineB, ["snapshot", "import", file, "--name", `${name}-trunc`], files);
      assert.notEqual(res.code, 0);
      assert.match(res.stderr, /cannot be read|truncated|ends before/);
      assertNothingImported(machineB, `${name}-trunc`);
    });

    it("a file that is not an archive at all", async () => {
      const file = join(files, "not-an-archive.snapshot.tar.gz");
      writeFileSync(file, "hello, I am a text file\n".repeat(100));
      const res = await on(machineB, ["snapshot", "import", file], files);
      assert.equal(res.code, 7);
      assert.doesNotMatch(res.stderr, /internal error/);
    });

    it("--verify checks the whole file before touching the engine", async () => {
      const file = join(files, "verify-first.snapshot.tar.gz");
      await writeEntries(
        file,
        (await readEntries(fresh)).map((x) =>
          x.name === "images/base.tar" ? { ...x, data: flip(x.data, 1000) } : x,
        ),
      );
      const res = await on(
        machineB,
        ["snapshot", "import", file, "--verify", "--name", `${name}-vf`],
        files,
        { DOCKER_HOST: "unix:///tmp/vm-no-engine.sock" },
      );
      assert.equal(res.code, 7, res.stderr);
      assert.match(res.stderr, /images\/base\.tar/);
    });
  });

  it("two imports of the same name at once: exactly one wins, the other reports the conflict", async () => {
    const target = `${name}-race`;
    const [one, two] = await Promise.all([
      on(machineB, ["snapshot", "import", base, "--name", target], files),
      on(machineB, ["snapshot", "import", base, "--name", target], files),
    ]);
    const codes = [one.code, two.code].sort();
    assert.deepEqual(codes, [0, 5], `${one.stderr}\n${two.stderr}`);
    const loser = one.code === 5 ? one : two;
    assert.match(
      loser.stderr,
      new RegExp(`Snapshot '@?${target}' (is being imported by another vm \\(pid \\d+\\)|already exists)`),
    );
    const list = JSON.parse((await on(machineB, ["snapshot", "list", "--format", "json"], files)).stdout) as {
      name: string;
    }[];
    assert.equal(list.filter((s) => s.name === target).length, 1);
  });

  it("a stale lock left by a killed vm is taken over", async () => {
    const target = `${name}-stale`;
    const locks = join(machineB.home, "vm", "snapshots", ".locks");
    mkdirSync(locks, { recursive: true });
    writeFileSync(join(locks, `global--${target}.lock`), "999999\n");
    const res = await on(machineB, ["snapshot", "import", base, "--name", target], files);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(existsSync(join(locks, `global--${target}.lock`)), false);
  });

  it("the next export removes temporary files a killed export left beside the target", async () => {
    const target = join(files, "leftover.snapshot.tar.gz");
    const stale = join(files, ".leftover.snapshot.tar.gz.vm-tmp-999999-abcd1234");
    writeFileSync(stale, "partial");
    const res = await on(machine, ["snapshot", "export", `@${name}`, "-o", target], files);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(existsSync(stale), false);
    assert.ok(existsSync(target));
  });

  it("Ctrl-C (SIGINT) and SIGTERM during an export leave no partial file, and the next export succeeds", async () => {
    const bulk = ensureBulkImage(machine.engine);
    const p = project({ Dockerfile: `FROM ${bulk}\n` });
    const big = `${name}-bulk`;
    assert.equal(
      (await on(machine, ["snapshot", "create", `@${big}`, "--from-dockerfile", "Dockerfile"], p.dir)).code,
      0,
    );
    const dir = mkdtempSync(join(files, "sig-"));
    const target = join(dir, "bulk.snapshot.tar.gz");
    // Bytes in the temporary file mean the export is past its set-up (its interrupt guard is in place: a
    // signal before that kills vm outright) and about a second from its end (48 MiB still to write).
    const writing = () =>
      readdirSync(dir).some((f) => {
        try {
          return f.includes("vm-tmp") && statSync(join(dir, f)).size > 0;
        } catch {
          return false; // renamed or removed between the listing and the stat
        }
      });
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      const child = spawn(VM_BIN, ["snapshot", "export", `@${big}`, "-o", target], {
        env: { ...process.env, DOCKER_HOST: machine.engine.host, XDG_CONFIG_HOME: machine.home },
        stdio: ["ignore", "ignore", "pipe"],
      });
      // Listen from the start, so an export that ends before the signal is seen instead of awaited forever.
      let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      const closed = new Promise<NonNullable<typeof ended>>((resolve) =>
        child.on("close", (code, sig) => resolve((ended = { code, signal: sig }))),
      );
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const deadline = Date.now() + 60_000;
      while (!ended && !writing() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      if (!ended && !writing()) {
        child.kill("SIGKILL");
        await closed;
        assert.fail(`${signal}: the export wrote nothing to a temporary file within 60 s; stderr: ${stderr}`);
      }
      assert.equal(
        ended,
        undefined,
        `${signal} was never sent: the export had already ended (${JSON.stringify(ended)}); stderr: ${stderr}`,
      );
      child.kill(signal);
      const result = await closed;
      assert.deepEqual(
        result,
        { code: signal === "SIGINT" ? 130 : 143, signal: null },
        `${signal} did not interrupt the export (exit code 0: it finished before the signal landed); stderr: ${stderr}`,
      );
      assert.deepEqual(readdirSync(dir), [], `${signal} left: ${readdirSync(dir).join(", ")}`);
    }
    const again = await on(machine, ["snapshot", "export", `@${big}`, "-o", target], files);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(readdirSync(dir), ["bulk.snapshot.tar.gz"]);
  });

  it("an export into a nearly full filesystem fails with 'no space', the path and the size, before starting when it can tell, and leaves no partial file", async (t) => {
    if (process.getuid?.() !== 0) return t.skip("mounting a small tmpfs needs root");
    const bulk = ensureBulkImage(machine.engine);
    const p = project({ Dockerfile: `FROM ${bulk}\n` });
    const big = `${name}-nospace`;
    assert.equal(
      (await on(machine, ["snapshot", "create", `@${big}`, "--from-dockerfile", "Dockerfile"], p.dir)).code,
      0,
    );
    // 16 MiB passes the check before the start (a tenth of the 50 MB image) and runs out mid-write;
    // 2 MiB is refused before anything is written.
    for (const size of ["16m", "2m"]) {
      const mount = mkdtempSync(join(tmpdir(), "vm-tmpfs-"));
      assert.equal(spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mount]).status, 0);
      try {
        const target = join(mount, "full.snapshot.tar.gz");
        const res = await on(machine, ["snapshot", "export", `@${big}`, "-o", target], files);
        assert.equal(res.code, 1, res.stderr);
        assert.match(
          res.stderr,
          size === "16m"
            ? new RegExp(
                `No space left on the device while writing ${target} \\([\\d.]+ [KM]?B written; about [\\d.]+ MB are needed\\)`,
              )
            : new RegExp(
                `Not enough space to write ${target}: [\\d.]+ [KM]?B free on its filesystem, and a [\\d.]+ MB image \\(gzip\\) needs at least [\\d.]+ MB`,
              ),
        );
        assert.match(res.stderr, /Hint: Free some space or write elsewhere with --output PATH/);
        assert.deepEqual(readdirSync(mount), []);
      } finally {
        spawnSync("umount", [mount]);
        rmSync(mount, { recursive: true, force: true });
      }
    }
  });

  it("an interrupted export leaves no partial file at the target", async () => {
    const target = join(files, "interrupted.snapshot.tar.gz");
    const res = await on(machine, ["snapshot", "export", `@${name}`, "-o", target], files, {
      VM_TEST_FAULTS: "export-after-image",
    });
    assert.equal(res.code, 1);
    assert.equal(existsSync(target), false);
    assert.deepEqual(
      readdirSync(files).filter((f) => f.includes("vm-tmp")),
      [],
    );
  });
});

function flip(data: Buffer, at: number): Buffer {
  const copy = Buffer.from(data);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

export type { TestEngine };
