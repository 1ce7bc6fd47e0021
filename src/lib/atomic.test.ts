import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { VmError } from "../errors.ts";
import { spawnSync } from "node:child_process";
import { removeStaleSpools, spoolPathIn, tempPathFor, writeFileAtomic } from "./atomic.ts";
import { ownerTag, self } from "./owner.ts";

describe("writeFileAtomic", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vm-atomic-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const fresh = () => mkdtempSync(join(dir, "case-"));

  it("writes string content to a new file and leaves only that file", async () => {
    const folder = fresh();
    const target = join(folder, "vm.yaml");
    await writeFileAtomic(target, "version: 1\n");
    assert.equal(readFileSync(target, "utf8"), "version: 1\n");
    assert.deepEqual(readdirSync(folder), ["vm.yaml"]);
  });

  it("writes binary content byte for byte", async () => {
    const folder = fresh();
    const target = join(folder, "data.bin");
    const bytes = Uint8Array.from([0, 255, 1, 128, 10]);
    await writeFileAtomic(target, bytes);
    assert.deepEqual([...readFileSync(target)], [0, 255, 1, 128, 10]);
  });

  it("replaces an existing file when not exclusive", async () => {
    const folder = fresh();
    const target = join(folder, "vm.yaml");
    writeFileSync(target, "old\n");
    await writeFileAtomic(target, "new\n");
    assert.equal(readFileSync(target, "utf8"), "new\n");
    assert.deepEqual(readdirSync(folder), ["vm.yaml"]);
  });

  it("creates a new file in exclusive mode", async () => {
    const folder = fresh();
    const target = join(folder, "vm.yaml");
    await writeFileAtomic(target, "x\n", { exclusive: true });
    assert.equal(readFileSync(target, "utf8"), "x\n");
    assert.deepEqual(readdirSync(folder), ["vm.yaml"]);
  });

  it("refuses an existing target in exclusive mode with FILE_EXISTS, keeping the old content and no temp file", async () => {
    const folder = fresh();
    const target = join(folder, "vm.yaml");
    writeFileSync(target, "keep me\n");
    await assert.rejects(writeFileAtomic(target, "clobber\n", { exclusive: true }), (error: unknown) => {
      assert.ok(error instanceof VmError);
      assert.equal(error.code, "FILE_EXISTS");
      assert.equal(error.exitCode, 5);
      assert.equal(error.message, `${target} already exists`);
      return true;
    });
    assert.equal(readFileSync(target, "utf8"), "keep me\n");
    assert.deepEqual(readdirSync(folder), ["vm.yaml"]);
  });

  it("rejects with the system error when the folder does not exist", async () => {
    const target = join(dir, "missing-folder", "vm.yaml");
    await assert.rejects(writeFileAtomic(target, "x"), { code: "ENOENT" });
  });
});

describe("tempPathFor", () => {
  it("names a hidden file beside the target that differs on each call", () => {
    const a = tempPathFor("/p/vm.yaml");
    const b = tempPathFor("/p/vm.yaml");
    assert.equal(dirname(a), "/p");
    assert.match(
      basename(a),
      new RegExp(`^\\.vm\\.yaml\\.vm-tmp-${process.pid}-[0-9a-f]{8}-s[0-9a-z]*-[0-9a-f]{8}$`),
    );
    assert.notEqual(a, b);
  });
});

describe("removeStaleSpools", () => {
  const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid;

  it("removes the scratch files of a vm no longer running, and keeps a live one's, another host's and other files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-spools-"));
    try {
      const dead = `.vm-spool-${ownerTag({ ...self(), pid: deadPid() })}-0a0b0c0d`;
      const older = `.vm-spool-${deadPid()}-0a0b0c0d`; // what vm wrote before owner tags: the pid alone
      const remote = `.vm-spool-${ownerTag({ pid: deadPid(), hostId: "0badc0de", started: "" })}-0a0b0c0d`;
      const mine = basename(spoolPathIn(dir));
      const other = "image.snapshot.tar.zst";
      for (const name of [dead, older, remote, mine, other]) writeFileSync(join(dir, name), "x");
      await removeStaleSpools(dir);
      assert.deepEqual(readdirSync(dir).sort(), [mine, remote, other].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("is quiet about a folder that does not exist yet", async () => {
    await removeStaleSpools(join(tmpdir(), "vm-no-such-folder-" + process.pid));
  });
});
