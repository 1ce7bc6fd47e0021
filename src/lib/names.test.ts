import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MEMORY_SIZE } from "./units.ts";
import {
  parseSnapshotInput,
  projectNameFromFolder,
  PROJECT_NAME,
  SNAPSHOT_NAME,
  validateProjectName,
} from "./names.ts";

describe("naming rules (lib/names.ts)", () => {
  it("a snapshot name is one path component of lowercase letters, digits, '.', '_', '-' (max 128)", () => {
    for (const name of ["vibe-base", "a", "node.22_x", "0", "a".repeat(128)])
      assert.ok(SNAPSHOT_NAME.test(name), name);
    for (const name of ["", "-x", ".hidden", "A", "a/b", "..", "a b", "a".repeat(129), "@x"])
      assert.ok(!SNAPSHOT_NAME.test(name), name);
  });

  it("@name is the global snapshot; a plain name is left to the caller; only one @ comes off", () => {
    assert.deepEqual(parseSnapshotInput("@base"), { global: true, name: "base" });
    assert.deepEqual(parseSnapshotInput("base"), { global: false, name: "base" });
    assert.deepEqual(parseSnapshotInput("@@base"), { global: true, name: "@base" });
    assert.deepEqual(parseSnapshotInput(" @base"), { global: false, name: " @base" }, "no trimming");
  });

  it("a folder gives a project name that fits the rule, else 'project'", () => {
    assert.equal(projectNameFromFolder("/work/My Shop!"), "my-shop-");
    assert.equal(projectNameFromFolder("/work/--.x"), "x");
    assert.equal(projectNameFromFolder("/work/日本"), "project");
    assert.equal(projectNameFromFolder(`/work/${"a".repeat(80)}`), "a".repeat(63));
    assert.ok(PROJECT_NAME.test(projectNameFromFolder("/work/My Shop!")));
    assert.equal(
      projectNameFromFolder("/work/global"),
      "project",
      "the store keeps global snapshots under 'global'",
    );
  });

  it("a project is never called 'global' or a path, which would land its snapshots elsewhere in the store", () => {
    for (const name of ["global", "../../etc", "a/b", ".hidden", ""]) {
      assert.ok(!PROJECT_NAME.test(name), name);
      assert.throws(() => validateProjectName(name), { code: "PROJECT_NAME_INVALID", exitCode: 2 });
    }
    for (const name of ["globals", "my-global", "web"]) assert.doesNotThrow(() => validateProjectName(name));
  });

  it("a memory size takes every unit memoryBytes knows, and unlimited", () => {
    for (const size of ["8g", "512 MiB", "1.5GB", "unlimited", "1024", " 2 t "])
      assert.ok(MEMORY_SIZE.test(size), size);
    for (const size of ["8 x", "g", "-1g", "1e3"]) assert.ok(!MEMORY_SIZE.test(size), size);
  });
});
