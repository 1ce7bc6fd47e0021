import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { editDistance, suggest } from "./suggest.ts";

describe("editDistance", () => {
  it("counts insertions, deletions, substitutions and swaps of neighbours as one edit", () => {
    assert.equal(editDistance("memory", "memory"), 0);
    assert.equal(editDistance("memroy", "memory"), 1);
    assert.equal(editDistance("bx", "box"), 1);
    assert.equal(editDistance("cpu", "cpus"), 1);
    assert.equal(editDistance("stauts", "status"), 1);
    assert.equal(editDistance("", "abc"), 3);
  });
});

describe("suggest", () => {
  it("offers the closest name within two edits", () => {
    assert.equal(suggest("memroy", ["box", "memory", "cpus"]), "memory");
    assert.equal(suggest("usr", ["user", "box"]), "user");
    assert.equal(suggest("require_signatures", ["require_signature"]), "require_signature");
  });

  it("offers a name that starts with what was written, after one-edit slips", () => {
    assert.equal(suggest("snap", ["stop", "snapshot"]), "snapshot");
    assert.equal(suggest("--out", ["--output", "--sign"]), "--output");
    assert.equal(suggest("workspace", ["name", "workspace_path"]), "workspace_path");
  });

  it("offers nothing when nothing is close, or the word is too short to tell", () => {
    assert.equal(suggest("frobnicate", ["create", "status"]), undefined);
    assert.equal(suggest("ab", ["vm"]), undefined);
    assert.equal(suggest("x", ["os"]), undefined);
  });
});
