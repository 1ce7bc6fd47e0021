import assert from "node:assert/strict";
import type { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import zlib from "node:zlib";
import { ExitCode } from "../errors.ts";
import { END_OF_ARCHIVE, encodeHeader } from "../lib/tar-header.ts";
import { readSnapshotArchive, type ArchiveContents } from "./archive-reader.ts";
import { ENTRY, MAX_MANIFEST_BYTES, MAX_SMALL_ENTRY_BYTES } from "./format.ts";
import { rejectsVm } from "./testing/assert.ts";
import { layerTar } from "./testing/docker-save.ts";
import { compress, entry, json, manifestOf, pack, streamOf, unpack, type Entry } from "./testing/tamper.ts";
import { tempDir, writeSnapshot } from "./testing/snapshot.ts";
import { retype, tarBytes, type TarItem } from "./testing/tar.ts";

const integrity = (message: RegExp | RegExp[]) => ({
  code: "ARCHIVE_INVALID",
  exitCode: ExitCode.integrity,
  message,
});

/** Reads as import does: the image and the volumes consumed as streams. */
function read(bytes: Buffer): Promise<ArchiveContents> {
  const consume = async (stream: Readable) => {
    for await (const _ of stream);
  };
  return readSnapshotArchive(streamOf(bytes, 4096), {
    onImage: async (image) => {
      await consume(image);
      return "consumed";
    },
    onVolume: (_name, stream) => consume(stream),
  });
}

describe("readSnapshotArchive refuses what the format does not allow", () => {
  let dir: string;
  let remove: () => Promise<void>;
  /** A good file's entries, uncompressed: each test breaks one rule in a copy. */
  let good: Entry[];
  let withVolumes: Entry[];
  before(async () => {
    ({ dir, remove } = await tempDir());
    good = unpack((await writeSnapshot({ dir, compression: "none" })).bytes).entries;
    withVolumes = unpack(
      (
        await writeSnapshot({
          dir,
          compression: "none",
          volumes: { a: layerTar({ x: "1" }), b: layerTar({ y: "2" }) },
        })
      ).bytes,
    ).entries;
  });
  after(() => remove());
  const copy = (entries: Entry[] = good): Entry[] => entries.map((e) => ({ ...e }));
  const names = (entries: Entry[]) => entries.map((e) => e.name);
  const at = (entries: Entry[], name: string) => entries.findIndex((e) => e.name === name);

  it("accepts the good files it starts from (with and without volumes)", async () => {
    assert.deepEqual(
      (await read(pack(good, "none"))).read.map((e) => e.path),
      names(good),
    );
    assert.deepEqual(
      (await read(pack(withVolumes, "gzip"))).read.map((e) => e.path),
      names(withVolumes),
    );
  });

  it("refuses an empty file", async () => {
    await rejectsVm(read(Buffer.alloc(0)), integrity(/^The file is empty$/));
  });

  it("refuses bytes that are not a tar, naming the damage", async () => {
    await rejectsVm(
      read(Buffer.from("this is not a snapshot file at all\n".repeat(40))),
      integrity(/^The snapshot file's tar stream is damaged: Not a tar header \(checksum mismatch\)$/),
    );
  });

  it("refuses a tar that holds no manifest.json", async () => {
    await rejectsVm(read(END_OF_ARCHIVE), integrity(/holds no manifest\.json: it is not a vm snapshot/));
  });

  it("refuses a file that does not start with manifest.json, naming what it starts with", async () => {
    const entries = copy();
    [entries[0], entries[1]] = [entries[1]!, entries[0]!];
    await rejectsVm(
      read(pack(entries, "none")),
      integrity(/must start with manifest\.json, not 'metadata\/versions\.json'/),
    );
  });

  it("refuses paths that climb out or are not the format's (../, absolute, ./, nested, unknown), naming them", async () => {
    const hostile = [
      "../manifest.json",
      "../../../../etc/cron.d/evil",
      "/etc/passwd",
      "./metadata/versions.json",
      "metadata/../manifest.json",
      "metadata/../../x",
      "volumes/../../x.tar",
      "volumes/a/../../b.tar",
      "images/../images/base.tar",
      "metadata/extra.json",
      "docs/README.md/",
    ];
    for (const name of hostile) {
      const entries = copy();
      entries.splice(1, 0, { name, data: Buffer.from("{}") });
      await rejectsVm(
        read(pack(entries, "none")),
        integrity(new RegExp(`^Unexpected entry '${escape(name)}' in the snapshot file$`)),
      );
    }
    // The same as the first entry: refused by its name, before it is read as a manifest.
    const first = copy();
    first[0]!.name = "../manifest.json";
    await rejectsVm(read(pack(first, "none")), integrity(/Unexpected entry '\.\.\/manifest\.json'/));
  });

  it("reads the path a PAX header gives (as tar does), and refuses a traversal hidden there", async () => {
    const items: TarItem[] = good.map((e) => ({ name: e.name, data: e.data }));
    items[1] = { ...items[1]!, pax: { path: "../../home/user/.bashrc" } };
    await rejectsVm(read(tarBytes(items)), integrity(/Unexpected entry '\.\.\/\.\.\/home\/user\/\.bashrc'/));
  });

  it("refuses links, folders, devices and FIFOs even under the format's own names, naming entry and type", async () => {
    const cases: [TarItem, RegExp][] = [
      [
        { name: ENTRY.versions, type: "symlink", linkname: "/etc/passwd" },
        /Entry 'metadata\/versions\.json' is a symlink; snapshot files hold only regular files/,
      ],
      [
        { name: ENTRY.versions, type: "link", linkname: ENTRY.manifest },
        /Entry 'metadata\/versions\.json' is a link;/,
      ],
      [
        { name: ENTRY.image, type: "link", linkname: "../../etc/shadow" },
        /Entry 'images\/base\.tar' is a link;/,
      ],
      [{ name: "metadata/", type: "directory" }, /Entry 'metadata\/' is a directory;/],
      [{ name: ENTRY.versions, type: "fifo" }, /Entry 'metadata\/versions\.json' is a fifo;/],
      [{ name: ENTRY.versions, type: "char" }, /Entry 'metadata\/versions\.json' is a character-device;/],
      [
        { name: ENTRY.versions, type: "contiguous" },
        /Entry 'metadata\/versions\.json' is a contiguous-file;/,
      ],
    ];
    for (const [item, message] of cases) {
      const items: TarItem[] = good.map((e) => ({ name: e.name, data: e.data }));
      items.splice(1, 0, item);
      await rejectsVm(read(tarBytes(items)), integrity(message));
    }
    // A link as the very first entry is refused as a link too.
    const items: TarItem[] = good.map((e) => ({ name: e.name, data: e.data }));
    items[0] = { name: ENTRY.manifest, type: "symlink", linkname: "/etc/passwd" };
    await rejectsVm(read(tarBytes(items)), integrity(/Entry 'manifest\.json' is a symlink/));
  });

  it("refuses a path that appears twice", async () => {
    for (const name of [ENTRY.manifest, ENTRY.versions, ENTRY.image]) {
      const entries = copy();
      const i = at(entries, name);
      entries.splice(i + 1, 0, { ...entries[i]! });
      await rejectsVm(
        read(pack(entries, "none")),
        integrity(new RegExp(`Entry '${escape(name)}' appears twice in the snapshot file`)),
      );
    }
  });

  it("refuses entries out of the format's order, naming the one that came too late", async () => {
    const swapped = copy();
    const v = at(swapped, ENTRY.versions);
    [swapped[v], swapped[v + 1]] = [swapped[v + 1]!, swapped[v]!];
    await rejectsVm(
      read(pack(swapped, "none")),
      integrity(/Entry 'metadata\/versions\.json' is out of order/),
    );

    const imageFirst = copy();
    const [image] = imageFirst.splice(at(imageFirst, ENTRY.image), 1);
    imageFirst.splice(1, 0, image!);
    await rejectsVm(
      read(pack(imageFirst, "none")),
      integrity(/Entry 'metadata\/versions\.json' is out of order/),
    );

    const readmeLast = copy();
    const [readme] = readmeLast.splice(at(readmeLast, ENTRY.readme), 1);
    readmeLast.splice(at(readmeLast, ENTRY.image) + 1, 0, readme!);
    await rejectsVm(read(pack(readmeLast, "none")), integrity(/Entry 'docs\/README\.md' is out of order/));

    // Volumes come in the order the manifest lists them.
    const volumes = copy(withVolumes);
    const a = at(volumes, "volumes/a.tar");
    [volumes[a], volumes[a + 1]] = [volumes[a + 1]!, volumes[a]!];
    await rejectsVm(read(pack(volumes, "none")), integrity(/Entry 'volumes\/a\.tar' is out of order/));

    const volumeBeforeImage = copy(withVolumes);
    const [vol] = volumeBeforeImage.splice(at(volumeBeforeImage, "volumes/a.tar"), 1);
    volumeBeforeImage.splice(at(volumeBeforeImage, ENTRY.image), 0, vol!);
    await rejectsVm(
      read(pack(volumeBeforeImage, "none")),
      integrity(/Entry 'images\/base\.tar' is out of order/),
    );
  });

  it("refuses anything after checksums.json but signature.json, and anything after signature.json", async () => {
    const late = copy();
    const [image] = late.splice(at(late, ENTRY.image), 1);
    late.push(image!);
    await rejectsVm(
      read(pack(late, "none")),
      integrity(
        /Entry 'images\/base\.tar' comes after checksums\.json, which only signature\.json may follow/,
      ),
    );

    const signatureFirst = copy();
    signatureFirst.splice(at(signatureFirst, ENTRY.checksums), 0, { name: ENTRY.signature, data: json({}) });
    await rejectsVm(
      read(pack(signatureFirst, "none")),
      integrity(/^signature\.json comes before checksums\.json$/),
    );

    const afterSignature = copy();
    afterSignature.push({ name: ENTRY.signature, data: json({}) }, { name: "volumes/x.tar", data: json({}) });
    await rejectsVm(
      read(pack(afterSignature, "none")),
      integrity(/Entry 'volumes\/x\.tar' comes after signature\.json, which must be last/),
    );
  });

  it("refuses a volume the manifest does not list", async () => {
    const extra = copy();
    extra.splice(at(extra, ENTRY.checksums), 0, { name: "volumes/stowaway.tar", data: layerTar({ x: "1" }) });
    await rejectsVm(
      read(pack(extra, "none")),
      integrity(/Entry 'volumes\/stowaway\.tar' is not a volume the manifest lists/),
    );
    const unlisted = copy(withVolumes);
    unlisted.splice(at(unlisted, ENTRY.image) + 1, 0, { name: "volumes/c.tar", data: layerTar({ x: "1" }) });
    await rejectsVm(
      read(pack(unlisted, "none")),
      integrity(/Entry 'volumes\/c\.tar' is not a volume the manifest lists/),
    );
  });

  it("refuses a manifest over 1 MiB and a document over 16 MiB, judged from the header", async () => {
    const bigManifest = copy();
    bigManifest[0]!.data = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    await rejectsVm(
      read(pack(bigManifest, "none")),
      integrity(
        new RegExp(
          `Entry 'manifest\\.json' is ${MAX_MANIFEST_BYTES + 1} bytes, more than the ${MAX_MANIFEST_BYTES} a snapshot file allows`,
        ),
      ),
    );
    // Only the header says how big: the data is not there (it would be refused before being read).
    const head = tarBytes(
      good.slice(0, at(good, ENTRY.readme)).map((e) => ({ name: e.name, data: e.data })),
      { end: false },
    );
    const claim = Buffer.concat([
      head,
      encodeHeader({ name: ENTRY.readme, size: MAX_SMALL_ENTRY_BYTES + 1 }),
      Buffer.alloc(4096),
    ]);
    await rejectsVm(
      read(claim),
      integrity(
        new RegExp(
          `Entry 'docs/README\\.md' is ${MAX_SMALL_ENTRY_BYTES + 1} bytes, more than the ${MAX_SMALL_ENTRY_BYTES}`,
        ),
      ),
    );
  });

  it("refuses an image entry whose header claims far more than twice the recorded image size plus 256 MiB", async () => {
    const manifest = manifestOf(good);
    const cap = manifest.size_bytes * 2 + 256 * 1024 * 1024;
    const head = tarBytes(
      good.slice(0, at(good, ENTRY.image)).map((e) => ({ name: e.name, data: e.data })),
      { end: false },
    );
    for (const compression of ["none", "gzip"] as const) {
      const claim = compress(
        Buffer.concat([head, encodeHeader({ name: ENTRY.image, size: cap + 1 }), Buffer.alloc(8192)]),
        compression,
      );
      await rejectsVm(
        read(claim),
        integrity(
          new RegExp(
            `images/base\\.tar claims ${cap + 1} bytes, far more than the ${manifest.size_bytes} the manifest records`,
          ),
        ),
      );
    }
  });

  it("refuses a manifest that is not JSON, not a manifest, or names a hostile snapshot", async () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from("{not json"), /^manifest\.json is not valid JSON$/],
      [
        json({ ...manifestOf(good), image_digest: "md5:1234" }),
        /manifest\.json is not a vm snapshot manifest \(image_digest: /,
      ],
      [
        json({ ...manifestOf(good), format: "other" }),
        /manifest\.json is not a vm snapshot manifest \(format: /,
      ],
      [
        json({ ...manifestOf(good), checksums: "elsewhere.json" }),
        /not a vm snapshot manifest \(checksums: /,
      ],
      [json([]), /not a vm snapshot manifest \(root: /],
      [
        json({ ...manifestOf(good), snapshot_name: "../../.ssh" }),
        /manifest\.json names the snapshot '\.\.\/\.\.\/\.ssh', which is not a valid snapshot name/,
      ],
      [json({ ...manifestOf(good), snapshot_name: "Has Space" }), /names the snapshot 'Has Space'/],
    ];
    for (const [data, message] of cases) {
      const entries = copy();
      entries[0]!.data = data;
      await rejectsVm(read(pack(entries, "none")), integrity(message));
    }
  });

  it("refuses a newer format version before reading further, saying to upgrade", async () => {
    for (const version of [2, "2.0", 17]) {
      const entries = copy();
      entries[0]!.data = json({ ...manifestOf(good), version });
      const error = await rejectsVm(read(pack(entries, "gzip")), {
        code: "ARCHIVE_FORMAT_NEWER",
        exitCode: ExitCode.integrity,
        message: new RegExp(
          `^This snapshot file uses format version ${Number.parseInt(String(version), 10)}; this vm reads versions up to 1$`,
        ),
      });
      assert.equal(error.hint, "Upgrade vm to import it");
    }
  });

  it("refuses a checksums.json that is not JSON or not a checksum list", async () => {
    for (const [data, message] of [
      [Buffer.from("]["), /^checksums\.json is not valid JSON$/],
      [
        json({ version: 1, manifest_sha256: "nope", entries: [] }),
        /^checksums\.json is not a vm checksum list$/,
      ],
    ] as const) {
      const entries = copy();
      entry(entries, ENTRY.checksums).data = data;
      await rejectsVm(read(pack(entries, "none")), integrity(message));
    }
  });

  it("refuses a vm 3.x file (it starts with ./) when no vm 3.x reader is given", async () => {
    const legacy = tarBytes([
      { name: "./", type: "directory" },
      { name: "./manifest.json", data: "{}" },
    ]);
    await rejectsVm(read(zlib.gzipSync(legacy)), integrity(/This is a snapshot file of vm 3\.x/));
  });

  describe("bytes no digest covers", () => {
    it("refuses a non-zero byte in a tar entry's padding, naming its offset", async () => {
      const tar = pack(good, "none");
      // manifest.json's data ends somewhere in its second block; the rest of that block is padding.
      const manifestSize = good[0]!.data.length;
      const offset = 512 + manifestSize + 3;
      assert.ok(manifestSize % 512 < 509, "the manifest leaves room for padding");
      for (const compression of ["none", "gzip", "zstd"] as const) {
        const bad = Buffer.from(tar);
        bad[offset] = 0x41;
        await rejectsVm(
          read(compress(bad, compression)),
          integrity(
            new RegExp(
              `tar stream is damaged: non-zero byte at offset ${offset} of the archive, in the padding after an entry's data`,
            ),
          ),
        );
      }
    });

    it("refuses anything but zeros after the end-of-archive block, and accepts more zeros there", async () => {
      const tar = pack(good, "none");
      for (const compression of ["none", "gzip", "zstd"] as const) {
        const junk = Buffer.concat([tar, Buffer.from("hidden payload")]);
        await rejectsVm(
          read(compress(junk, compression)),
          integrity(
            new RegExp(
              `non-zero byte at offset ${tar.length} of the archive, after the end-of-archive block`,
            ),
          ),
        );
        // tar's record blocking pads to 10240 bytes with zeros: that is not damage.
        const padded = Buffer.concat([tar, Buffer.alloc(10240 - (tar.length % 10240))]);
        assert.equal((await read(compress(padded, compression))).read.length, good.length);
      }
    });

    it("refuses bytes after the end of the compressed data (gzip would drop them silently)", async () => {
      const gz = zlib.gzipSync(pack(good, "none"));
      // zlib reads bytes after a member as the next member, except when they start with a zero byte: then
      // it stops and drops them without a word. The reader counts what the decoder consumed.
      await rejectsVm(
        read(Buffer.concat([gz, Buffer.from("\0hidden payload")])),
        integrity(
          /^15 bytes follow the end of the compressed data; a snapshot file ends where its archive ends$/,
        ),
      );
      await rejectsVm(
        read(Buffer.concat([gz, Buffer.from("trailing!")])),
        integrity(/^The snapshot file cannot be read: incorrect header check/),
      );
      const zst = zlib.zstdCompressSync(pack(good, "none"));
      for (const trailing of ["\0hidden payload", "trailing!"])
        await rejectsVm(
          read(Buffer.concat([zst, Buffer.from(trailing)])),
          integrity(
            new RegExp(`^${Buffer.byteLength(trailing)} bytes follow the end of the compressed data`),
          ),
        );
    });

    it("refuses a truncated or corrupted compressed stream as unreadable", async () => {
      const gz = zlib.gzipSync(pack(good, "none"));
      await rejectsVm(read(gz.subarray(0, gz.length - 20)), integrity(/^The snapshot file cannot be read: /));
      const flipped = Buffer.from(gz);
      flipped[Math.floor(gz.length / 2)]! ^= 0x10;
      await rejectsVm(read(flipped), integrity(/cannot be read|tar stream is damaged/));
      const crc = Buffer.from(gz);
      crc[gz.length - 6]! ^= 0xff; // the member's CRC-32
      await rejectsVm(read(crc), integrity(/^The snapshot file cannot be read: .*(check|Z_DATA_ERROR)/));
      const zst = zlib.zstdCompressSync(pack(good, "none"), {
        params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 },
      });
      await rejectsVm(
        read(zst.subarray(0, zst.length - 10)),
        integrity(/^The snapshot file cannot be read: /),
      );
    });

    it("refuses a tar header whose checksum does not match", async () => {
      const tar = pack(good, "none");
      const bad = Buffer.from(tar);
      const second = 512 + Math.ceil(good[0]!.data.length / 512) * 512;
      bad[second + 2]! ^= 0x01;
      await rejectsVm(
        read(bad),
        integrity(/^The snapshot file's tar stream is damaged: Not a tar header \(checksum mismatch\)$/),
      );
    });

    it("refuses zstd frames that ask for a window over 32 MiB, saying how to recompress", async () => {
      const tar = pack(good, "none");
      // A frame with a window descriptor of 2^27 bytes (what zstd --long writes) and raw blocks.
      const blocks: Buffer[] = [];
      for (let offset = 0; offset < tar.length; offset += 65536) {
        const chunk = tar.subarray(offset, offset + 65536);
        const header = Buffer.alloc(3);
        header.writeUIntLE((chunk.length << 3) | (offset + 65536 >= tar.length ? 1 : 0), 0, 3);
        blocks.push(header, chunk);
      }
      const frame = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (27 - 10) << 3]), ...blocks]);
      const error = await rejectsVm(
        read(frame),
        integrity(/zstd frames ask for a window larger than the 32 MiB vm decodes/),
      );
      assert.match(error.hint!, /zstd -19/);
    });

    it("accepts any standard gzip framing: a file name and comment in the header, several members", async () => {
      const tar = pack(good, "none");
      const gz = zlib.gzipSync(tar.subarray(0, 3000));
      // FLG.FNAME | FLG.FCOMMENT, with the name and comment after the 10-byte header.
      const named = Buffer.concat([
        gz.subarray(0, 3),
        Buffer.from([0x18]),
        gz.subarray(4, 10),
        Buffer.from("x.tar\0made by hand\0"),
        gz.subarray(10),
      ]);
      const multi = Buffer.concat([named, zlib.gzipSync(tar.subarray(3000), { level: 9 })]);
      assert.equal((await read(multi)).read.length, good.length);
    });
  });

  it("refuses a header rewritten to a link after the fact (checksum made right)", async () => {
    const tar = Buffer.from(pack(good, "none"));
    const second = 512 + Math.ceil(good[0]!.data.length / 512) * 512;
    const header = retype(tar.subarray(second, second + 512), "2", "/etc/passwd");
    header.copy(tar, second);
    await rejectsVm(read(tar), integrity(/Entry 'metadata\/versions\.json' is a symlink/));
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
