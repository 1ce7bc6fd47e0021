import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { readSnapshotArchive } from "./archive-reader.ts";
import { counting } from "./input.ts";
import { dockerSave } from "./testing/docker-save.ts";
import { tempDir, writeSnapshot } from "./testing/snapshot.ts";

describe("a reader stopped by its handler while the file is still being read", () => {
  let dir: { dir: string; remove: () => Promise<void> };
  let file: string;
  before(async () => {
    dir = await tempDir();
    // Incompressible, so the file is large and most of it is still unread when the head is refused.
    const image = dockerSave({ layers: [{ big: randomBytes(8 * 1024 * 1024).toString("base64") }] });
    const written = await writeSnapshot({ dir: dir.dir, compression: "gzip", image });
    file = join(dir.dir, "big.snapshot.tar.gz");
    await writeFile(file, written.bytes);
  });
  after(() => dir.remove());

  for (const when of ["at once", "after a while"] as const) {
    it(`rejects with the handler's error (${when}) and leaves no stream behind`, async () => {
      const source = createReadStream(file, { highWaterMark: 64 * 1024 });
      const refused = new Error("Snapshot 'vibe-base' already exists");
      await assert.rejects(
        readSnapshotArchive(
          counting(source, () => {}),
          {
            onManifest: async () => {
              if (when === "after a while") await sleep(50);
              throw refused;
            },
          },
        ),
        (error) => error === refused,
      );
      assert.equal(source.destroyed, true, "the file is no longer read");
    });
  }
});
