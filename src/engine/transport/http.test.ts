import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareVersions } from "./http.ts";

describe("compareVersions", () => {
  it("returns 0 for equal versions", () => {
    assert.equal(compareVersions("1.45", "1.45"), 0);
  });

  it("treats missing parts as 0", () => {
    assert.equal(compareVersions("1.45", "1.45.0"), 0);
    assert.equal(compareVersions("2", "2.0.0"), 0);
  });

  it("is negative when the first is older and positive when newer", () => {
    assert.ok(compareVersions("1.41", "1.45") < 0);
    assert.ok(compareVersions("1.45", "1.41") > 0);
    assert.ok(compareVersions("1.45", "2.0") < 0);
    assert.ok(compareVersions("1.45.1", "1.45") > 0);
  });

  it("compares parts as numbers, not as text", () => {
    assert.ok(compareVersions("1.9", "1.10") < 0);
    assert.ok(compareVersions("1.100", "1.99") > 0);
  });

  it("returns the difference of the first differing part", () => {
    assert.equal(compareVersions("1.41", "1.45"), -4);
    assert.equal(compareVersions("3.0", "1.99"), 2);
  });
});
