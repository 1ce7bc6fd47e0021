import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { availableEngines } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import {
  cleanupRun,
  exportedSnapshot,
  RUN_ID,
  runImages,
  runVm,
  TEST_LABEL,
  uniqueName,
} from "./helpers/vm.ts";

/**
 * Sweeps generated from a real export: single-bit flips in every region of the archive (each entry's
 * tar header and data: manifest, metadata, image layers, checksums) and truncations at many lengths.
 * Every case must be refused with a specific message, register nothing and change nothing in the engine.
 */
describe("generated damage: bit flips and truncations", () => {
  const engine = availableEngines()[availableEngines().length - 1]!;
  const source = availableEngines()[0]!;
  const dir = mkdtempSync(join(tmpdir(), "vm-hostile-"));
  const homeA = join(dir, "a");
  const homeB = join(dir, "b");
  const name = uniqueName("sweep");
  const counts: Record<string, number> = {};
  let tarBytes: Buffer;
  let fileBytes: Buffer;
  let regions: { region: string; offsets: number[] }[] = [];
  let imagesBefore = "";
  /** The config digest of the exported image: what an accepted file must import as. */
  let imageId = "";

  before(async () => {
    const file = await exportedSnapshot(source, {
      dir,
      home: homeA,
      name,
      dockerfile: `FROM ${ensureBusybox(source)}\nRUN echo ${name} > /sweep\n`,
      out: join(dir, "good.snapshot.tar.gz"),
    });
    fileBytes = readFileSync(file);
    const inspected = await runVm(["snapshot", "inspect", file, "--json"], { cwd: dir, engine: source });
    imageId = (JSON.parse(inspected.stdout) as { image_digest: string }).image_digest;
    tarBytes = gunzipSync(fileBytes);
    // Walk the tar: header block, then data padded to 512, per entry.
    let offset = 0;
    while (offset + 512 <= tarBytes.length && tarBytes[offset] !== 0) {
      const entry = tarBytes.toString("utf8", offset, offset + 100).replace(/\0.*$/, "");
      const size = Number.parseInt(
        tarBytes
          .toString("ascii", offset + 124, offset + 136)
          .replace(/\0.*$/, "")
          .trim(),
        8,
      );
      regions.push({ region: `${entry} header`, offsets: [offset + 1, offset + 125, offset + 150] });
      const data = offset + 512;
      const picks =
        size <= 3
          ? [data]
          : [data, data + Math.floor(size / 3), data + Math.floor((2 * size) / 3), data + size - 1];
      regions.push({ region: `${entry} data`, offsets: picks });
      const end = data + size;
      offset = data + Math.ceil(size / 512) * 512;
      if (offset > end) regions.push({ region: `${entry} padding`, offsets: [end, offset - 1] });
    }
    regions.push({ region: "end-of-archive blocks", offsets: [offset, offset + 511, tarBytes.length - 1] });
    regions = regions.filter((r) => r.offsets.length > 0);
    imagesBefore = runImages(engine);
  });
  after(() => {
    const summary = Object.entries(counts)
      .map(([k, v]) => `${k}: ${v}`)
      .join(", ");
    console.log(`generated damage cases tried: ${summary}`);
    cleanupRun(source);
    cleanupRun(engine);
    rmSync(dir, { recursive: true, force: true });
  });

  async function refused(file: string, category: string): Promise<string> {
    counts[category] = (counts[category] ?? 0) + 1;
    const target = `${name}-x`;
    const res = await runVm(["snapshot", "import", file, "--name", target], {
      cwd: dir,
      engine,
      env: { XDG_CONFIG_HOME: homeB },
    });
    assert.notEqual(res.code, 0, `${file}: ${res.stdout}`);
    assert.match(res.stderr, /^Error: .+\nHint: .+\n$/s, res.stderr);
    assert.doesNotMatch(res.stderr, /internal error/);
    assert.equal(existsSync(join(homeB, "vm", "snapshots", "global", target)), false);
    const staging = join(homeB, "vm", "snapshots", ".staging");
    assert.deepEqual(existsSync(staging) ? readdirSync(staging) : [], []);
    assert.equal(runImages(engine), imagesBefore, "the engine's images are as they were");
    return res.stderr;
  }

  /**
   * A flip in a byte the decoder does not interpret (a gzip member's time, XFL or OS byte, its FTEXT flag;
   * a zstd frame header's unused bit) leaves the decoded content exactly as it was: the file must import
   * as the same snapshot, and verify. Which bytes those are is decided by their place, never by outcome.
   */
  async function accepted(file: string, category: string): Promise<void> {
    counts[category] = (counts[category] ?? 0) + 1;
    const target = `${name}-x`;
    const env = { XDG_CONFIG_HOME: homeB };
    const res = await runVm(["snapshot", "import", file, "--name", target], { cwd: dir, engine, env });
    assert.equal(res.code, 0, `${file}: ${res.stderr}`);
    const verified = await runVm(["snapshot", "verify", file], { cwd: dir, engine, env });
    assert.equal(verified.code, 0, verified.stderr);
    const meta = JSON.parse(
      (await runVm(["snapshot", "inspect", `@${target}`, "--json"], { cwd: dir, engine, env })).stdout,
    ) as {
      image_id: string;
    };
    assert.equal(meta.image_id, imageId, "the same image as the undamaged file's");
    assert.equal((await runVm(["snapshot", "delete", `@${target}`], { cwd: dir, engine, env })).code, 0);
    assert.equal(runImages(engine), imagesBefore, "the engine's images are as they were");
  }

  it("refuses a single-bit flip in every region of the archive", async () => {
    for (const { region, offsets } of regions) {
      for (const at of offsets) {
        const damaged = Buffer.from(tarBytes);
        damaged[at] = damaged[at]! ^ 0x04;
        const file = join(dir, "flip.snapshot.tar.gz");
        writeFileSync(file, gzipSync(damaged));
        const message = await refused(file, "bit flips");
        // The refusal names what was damaged: the entry whose bytes changed (its digest or its header),
        // or the tar stream itself for padding and the archive's end.
        const entry = region.replace(/ (header|data|padding)$/, "");
        const where = region.endsWith(" data")
          ? new RegExp(`${entry.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}|images/base\\.tar`)
          : /tar|header|manifest|checksums|entry|Entry/;
        assert.match(message, where, `${region} at ${at}: ${message}`);
      }
    }
  });

  it("refuses a single-bit flip in the compressed file itself: its gzip header and members throughout", async () => {
    const offsets = [...Array.from({ length: 10 }, (_, i) => i)];
    for (let i = 1; i < 24; i++) offsets.push(Math.floor((fileBytes.length * i) / 24));
    offsets.push(fileBytes.length - 8, fileBytes.length - 4, fileBytes.length - 1);
    // Where each gzip member starts: vm writes every member with one fixed header.
    const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    const members: number[] = [];
    for (let at = fileBytes.indexOf(header); at >= 0; at = fileBytes.indexOf(header, at + 1))
      members.push(at);
    assert.ok(members.length >= 2 && members[0] === 0, `member headers found at ${members.join(", ")}`);
    for (const at of offsets) {
      const damaged = Buffer.from(fileBytes);
      // Bit 0 of the flags byte (FTEXT) is a hint zlib ignores; bit 2 elsewhere.
      damaged[at] = damaged[at]! ^ (at === 3 ? 0x01 : 0x04);
      const file = join(dir, "cflip.snapshot.tar.gz");
      writeFileSync(file, damaged);
      // A member's MTIME (4-7), XFL (8) and OS (9) bytes, and FTEXT, do not take part in decoding.
      const harmless = members.some((m) => (at >= m + 4 && at <= m + 9) || (at === 3 && m === 0));
      if (harmless) await accepted(file, "compressed flips in bytes no decoder reads");
      else await refused(file, "compressed bit flips");
    }
  });

  it("refuses a single-bit flip in a zstd file: its frame headers and frames throughout", async () => {
    const file = join(dir, "good.snapshot.tar.zst");
    const made = await runVm(["snapshot", "export", `@${name}`, "-o", file], {
      cwd: dir,
      engine: source,
      env: { XDG_CONFIG_HOME: homeA },
    });
    assert.equal(made.code, 0, made.stderr);
    const zst = readFileSync(file);
    // Offset 5 is the first frame's window size, which only bounds the decoder's memory: a larger one
    // decodes the same bytes (docs/security.md lists what no check can see).
    const offsets = Array.from({ length: 14 }, (_, i) => i).filter((i) => i !== 5);
    for (let i = 1; i < 16; i++) offsets.push(Math.floor((zst.length * i) / 16));
    offsets.push(zst.length - 4, zst.length - 1);
    const magic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
    const frames: number[] = [];
    for (let at = zst.indexOf(magic); at >= 0; at = zst.indexOf(magic, at + 1)) frames.push(at);
    for (const at of offsets) {
      // A later frame's window size bounds only the decoder's memory, like the first one's (skipped above).
      if (frames.some((f) => f > 0 && at === f + 5)) continue;
      for (const bit of [0x01, 0x10]) {
        const damaged = Buffer.from(zst);
        damaged[at] = damaged[at]! ^ bit;
        const flipped = join(dir, "zflip.snapshot.tar.zst");
        writeFileSync(flipped, damaged);
        // Bit 4 of a frame header descriptor is unused: the format says decoders must not interpret it.
        if (bit === 0x10 && frames.includes(at - 4))
          await accepted(flipped, "zstd flips in bytes no decoder reads");
        else await refused(flipped, "zstd bit flips");
      }
    }
  });

  it("refuses the file cut at many lengths", async () => {
    const gz = gzipSync(tarBytes);
    const lengths = [0, 1, 10, 100, 511, 512, 1024, 4096];
    for (let i = 1; i < 12; i++) lengths.push(Math.floor((gz.length * i) / 12));
    lengths.push(gz.length - 8, gz.length - 1);
    for (const length of lengths) {
      const file = join(dir, "cut.snapshot.tar.gz");
      writeFileSync(file, gz.subarray(0, length));
      await refused(file, "truncations");
    }
  });

  it("still imports the undamaged file afterwards", async () => {
    const res = await runVm(
      ["snapshot", "import", join(dir, "good.snapshot.tar.gz"), "--name", `${name}-ok`],
      {
        cwd: dir,
        engine,
        env: { XDG_CONFIG_HOME: homeB, VM_LABELS: `${TEST_LABEL}=${RUN_ID}` },
      },
    );
    assert.equal(res.code, 0, res.stderr);
  });
});
