import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { KEEP_PARTIAL_MS, PartialDownload } from "./partial.ts";

describe("PartialDownload.open", () => {
  it("drops other URLs' kept downloads untouched for a week, and keeps recent ones and its own", async () => {
    const cache = mkdtempSync(join(tmpdir(), "vm-partial-"));
    try {
      const dir = join(cache, "vm", "downloads");
      mkdirSync(dir, { recursive: true });
      const old = new Date(Date.now() - KEEP_PARTIAL_MS - 60_000);
      for (const [key, when] of [
        ["a".repeat(32), old],
        ["b".repeat(32), new Date()],
      ] as const) {
        writeFileSync(join(dir, `${key}.part`), "kept bytes");
        writeFileSync(
          join(dir, `${key}.json`),
          JSON.stringify({ url: `https://h/${key}`, etag: '"e"', size: 100 }),
        );
        utimesSync(join(dir, `${key}.part`), when, when);
      }
      // The URL being opened has an old copy too: that one is the download's own, never dropped here.
      const url = "https://example.test/base.snapshot.tar.zst";
      // The copy's name: the first 32 hex digits of the URL's sha256 (partial.ts).
      const own = createHash("sha256").update(url).digest("hex").slice(0, 32);
      writeFileSync(join(dir, `${own}.part`), "x".repeat(10));
      writeFileSync(join(dir, `${own}.json`), JSON.stringify({ url, etag: '"e"', size: 100 }));
      utimesSync(join(dir, `${own}.part`), old, old);
      const partial = await PartialDownload.open({ XDG_CACHE_HOME: cache }, url);
      assert.deepEqual(partial.from, { offset: 10, etag: '"e"' }, "its own old copy still continues");
      assert.deepEqual(
        readdirSync(dir).sort(),
        [`${"b".repeat(32)}.json`, `${"b".repeat(32)}.part`, `${own}.json`, `${own}.part`].sort(),
      );
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
