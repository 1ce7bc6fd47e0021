import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { engineState } from "./helpers/engine-names.ts";
import { availableEngines, docker, dockerTry } from "./helpers/engines.ts";
import { makeVm3File } from "./helpers/vm3.ts";
import { cleanupRun, makeProject, runVm, uniqueName } from "./helpers/vm.ts";

/**
 * Snapshot files exported by vm 3.x import here: verified as far as such a file allows (the image's own
 * content addresses and the image ID its metadata records), their volumes along, hostile ones refused,
 * and the import says plainly what it is. Made on one engine, imported on the other (and on the same).
 */
const engines = availableEngines();
const source = engines[0]!;
const dir = mkdtempSync(join(tmpdir(), "vm-vm3-"));
const home = (engine: (typeof engines)[number]) => join(dir, `home-${engine.name}`);
const vm = (
  engine: (typeof engines)[number],
  args: string[],
  cwd = dir,
  extra: Record<string, string> = {},
) => runVm(args, { cwd, engine, env: { XDG_CONFIG_HOME: home(engine), ...extra } });

after(() => {
  for (const engine of engines) cleanupRun(engine);
  rmSync(dir, { recursive: true, force: true });
});

describe("snapshot files from vm 3.x", () => {
  it("a base (global) file imports on every engine, says what it is, and boxes start from it", async () => {
    // Made on each store: the image ID it records is the config digest (classic) or a manifest digest (containerd).
    for (const maker of engines)
      for (const engine of engines) {
        const name = uniqueName("v3base");
        const marker = `marker-${name}`;
        const file = makeVm3File(dir, { engine: maker, name, marker, global: true });
        const res = await vm(engine, ["snapshot", "import", file]);
        assert.equal(res.code, 0, res.stderr);
        assert.match(
          res.stdout,
          new RegExp(
            `Imported snapshot @${name} \\(a vm 3\\.x snapshot file: it has no checksums for its documents or volumes and no signature`,
          ),
        );
        // Its tags were taken out: the engine has the image only under vm's own name.
        assert.notEqual(
          dockerTry(engine, ["image", "inspect", `vm-snapshot/global/${name}:latest`]).status,
          0,
        );
        const list = JSON.parse((await vm(engine, ["snapshot", "list", "--format", "json"])).stdout) as {
          name: string;
          source: string;
        }[];
        assert.equal(list.find((s) => s.name === name)?.source, "imported");
        const p = makeProject({ "vm.yaml": `vm.box: @${name}\n` });
        try {
          assert.equal((await vm(engine, ["create"], p.dir)).code, 0);
          const out = await vm(engine, ["exec", "--", "cat", "/marker"], p.dir);
          assert.equal(out.stdout, `${marker}\n`, out.stderr);
          assert.equal((await vm(engine, ["destroy", "--force"], p.dir)).code, 0);
        } finally {
          p.cleanup();
        }
        assert.equal((await vm(engine, ["snapshot", "delete", `@${name}`])).code, 0);
      }
  });

  it("a project file with volumes imports with its volume data (gzip volumes, and HEAD's zstd ones)", async () => {
    for (const volumeCompression of ["gzip", "zstd"] as const) {
      const name = uniqueName("v3proj");
      const project = uniqueName("p");
      const file = makeVm3File(dir, {
        engine: source,
        name,
        marker: "project-marker",
        global: false,
        project,
        volumes: { data: { file: "hello.txt", content: `volume data ${name}` } },
        volumeCompression,
      });
      const engine = engines.at(-1)!;
      const imported = await vm(engine, ["snapshot", "import", file]);
      assert.equal(imported.code, 0, imported.stderr);
      const p = makeProject({ "vm.yaml": `vm:\n  box: "@${name}"\nvolumes: ["data:/data"]\n` });
      try {
        const created = await vm(engine, ["create"], p.dir);
        assert.equal(created.code, 0, created.stderr);
        assert.match(created.stderr, /Volumes data start with the snapshot's data/);
        const out = await vm(engine, ["exec", "--", "cat", "/data/hello.txt"], p.dir);
        assert.equal(out.stdout, `volume data ${name}`, out.stderr);
        assert.equal((await vm(engine, ["destroy", "--force"], p.dir)).code, 0);
      } finally {
        p.cleanup();
      }
    }
  });

  it("verify and inspect describe a vm 3.x file without an engine", async () => {
    const name = uniqueName("v3ver");
    const file = makeVm3File(dir, { engine: source, name, marker: "m", global: true });
    const verified = await vm(source, ["snapshot", "verify", file], dir, {
      DOCKER_HOST: "unix:///nonexistent.sock",
    });
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /is a vm 3\.x snapshot file, intact as far as such a file can tell/);
    assert.match(verified.stdout, /that it is the image sha256:[0-9a-f]{64} its metadata records/);
    assert.match(verified.stdout, /not checked: its documents and volumes/);
    const inspected = await vm(source, ["snapshot", "inspect", file], dir, {
      DOCKER_HOST: "unix:///nonexistent.sock",
    });
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.match(inspected.stdout, new RegExp(`Snapshot file: ${name} \\(vm 3\\.x format 1\\.0, gzip\\)`));
  });

  it("a file whose image is not the one its metadata records is refused and leaves nothing", async () => {
    const name = uniqueName("v3bad");
    const file = makeVm3File(dir, {
      engine: source,
      name,
      marker: "m",
      global: true,
      changeMetadata: (m) => {
        (m.services as { image_digest: string }[])[0]!.image_digest = `sha256:${"ab".repeat(32)}`;
      },
    });
    for (const engine of engines) {
      const before = engineState(engine);
      const res = await vm(engine, ["snapshot", "import", file]);
      assert.equal(res.code, 7, res.stderr);
      assert.match(
        res.stderr,
        /^Error: images\/base\.tar is not the image metadata\.json records: expected image ID sha256:(ab){32}, the file's image is sha256:[0-9a-f]{64}/,
      );
      assert.deepEqual(engineState(engine), before, `${engine.name}: the engine changed`);
      assert.equal(existsSync(join(home(engine), "vm", "snapshots", "global", name)), false);
      const verified = await vm(engine, ["snapshot", "verify", file]);
      assert.equal(verified.code, 7);
    }
  });

  it("the same conflict, --name, --force and signature rules as vm's own files; hostile entries refused", async () => {
    const name = uniqueName("v3rules");
    const file = makeVm3File(dir, { engine: source, name, marker: "m", global: true });
    const engine = engines.at(-1)!;
    assert.equal((await vm(engine, ["snapshot", "import", file])).code, 0);
    const again = await vm(engine, ["snapshot", "import", file]);
    assert.equal(again.code, 5);
    assert.match(
      again.stderr,
      new RegExp(
        `Error: Snapshot '${name}' already exists\\nHint: Use --force to overwrite or --name to import with different name`,
      ),
    );
    assert.equal((await vm(engine, ["snapshot", "import", file, "--force"])).code, 0);
    assert.equal((await vm(engine, ["snapshot", "import", file, "--name", `${name}-b`])).code, 0);
    const signed = await vm(engine, [
      "snapshot",
      "import",
      file,
      "--name",
      `${name}-c`,
      "--require-signature",
    ]);
    assert.equal(signed.code, 7);
    assert.match(
      signed.stderr,
      /This is a vm 3\.x snapshot file, which carries no signature, and a signature is required/,
    );
    const hostile = makeVm3File(dir, {
      engine: source,
      name: `${name}-h`,
      marker: "m",
      global: true,
      extra: [["evil.sh", "#!/bin/sh\n"]],
    });
    const refused = await vm(engine, ["snapshot", "import", hostile]);
    assert.equal(refused.code, 7);
    assert.match(refused.stderr, /Unexpected entry 'evil\.sh' in the vm 3\.x snapshot file/);
    for (const n of [name, `${name}-b`])
      assert.equal((await vm(engine, ["snapshot", "delete", `@${n}`])).code, 0);
    assert.equal(docker(engine, ["images", "-q", `vm-snapshot/global:${name}`]), "");
  });
});
