import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatBytes, memoryBytes, nanoCpus } from "./units.ts";

const KB = 1024;
const MB = 1024 ** 2;
const GB = 1024 ** 3;

describe("memoryBytes", () => {
  it("returns undefined when no memory is given", () => {
    assert.equal(memoryBytes(undefined), undefined);
  });

  it("reads a number as MB", () => {
    assert.equal(memoryBytes(2048), 2048 * MB);
    assert.equal(memoryBytes(0.5), 512 * KB);
  });

  it("reads sizes in binary units, any case", () => {
    assert.equal(memoryBytes("8gb"), 8 * GB);
    assert.equal(memoryBytes("8G"), 8 * GB);
    assert.equal(memoryBytes("8GiB"), 8 * GB);
    assert.equal(memoryBytes("512mb"), 512 * MB);
    assert.equal(memoryBytes("512m"), 512 * MB);
    assert.equal(memoryBytes("64k"), 64 * KB);
    assert.equal(memoryBytes("100b"), 100);
    assert.equal(memoryBytes("1t"), 1024 ** 4);
  });

  it("reads fractional sizes and rounds to whole bytes", () => {
    assert.equal(memoryBytes("1.5g"), 1.5 * GB);
    assert.equal(memoryBytes("0.25gb"), 256 * MB);
    assert.equal(memoryBytes("1.3b"), 1);
  });

  it("reads a unitless string as MB, as a bare number is", () => {
    assert.equal(memoryBytes("2048"), 2048 * MB);
  });

  it("allows spaces around and inside the size", () => {
    assert.equal(memoryBytes(" 8 gb "), 8 * GB);
  });

  it("reads 'unlimited' in any case as no limit", () => {
    assert.equal(memoryBytes("unlimited"), undefined);
    assert.equal(memoryBytes("Unlimited"), undefined);
  });

  it("throws on text that is not a size", () => {
    assert.throws(() => memoryBytes("lots"), { message: "not a memory size: lots" });
    assert.throws(() => memoryBytes("8 zb"), { message: "not a memory size: 8 zb" });
  });
});

describe("nanoCpus", () => {
  it("returns undefined for no limit", () => {
    assert.equal(nanoCpus(undefined), undefined);
    assert.equal(nanoCpus("unlimited"), undefined);
  });

  it("converts CPUs to NanoCpus", () => {
    assert.equal(nanoCpus(2), 2_000_000_000);
    assert.equal(nanoCpus(1.5), 1_500_000_000);
    assert.equal(nanoCpus(0.1), 100_000_000);
  });
});

describe("formatBytes", () => {
  it("prints bytes below 1 KB as whole bytes", () => {
    assert.equal(formatBytes(0), "0 B");
    assert.equal(formatBytes(1023), "1023 B");
  });

  it("prints larger values with one decimal below 100 of a unit", () => {
    assert.equal(formatBytes(1024), "1.0 KB");
    assert.equal(formatBytes(1536), "1.5 KB");
    assert.equal(formatBytes(8 * GB), "8.0 GB");
    assert.equal(formatBytes(1.5 * 1024 ** 4), "1.5 TB");
  });

  it("prints whole numbers from 100 of a unit up", () => {
    assert.equal(formatBytes(100 * MB), "100 MB");
    assert.equal(formatBytes(512 * MB), "512 MB");
  });

  it("stays in TB past 1024 TB", () => {
    assert.equal(formatBytes(2048 * 1024 ** 4), "2048 TB");
  });
});
