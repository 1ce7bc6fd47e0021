import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { ExitCode, VmError } from "../errors.ts";
import type { Compression } from "../lib/codec.ts";
import { ENTRY } from "./format.ts";
import { ImageVerifier } from "./verify.ts";
import { sha256 } from "./writer.ts";
import { rejectsVm, type Expected } from "./testing/assert.ts";
import { dockerSave, layerTar, sha256hex, type SavedImage } from "./testing/docker-save.ts";
import {
  checksumsOf,
  entry,
  json,
  manifestOf,
  pack,
  reseal,
  resealChecksums,
  verifyBytes,
  unpack,
  type Entry,
} from "./testing/tamper.ts";
import { tempDir, writeSnapshot, type WrittenSnapshot } from "./testing/snapshot.ts";
import type { TarItem } from "./testing/tar.ts";

/** `vm snapshot verify -`: the whole file, read from a stream, checked without an engine. */
const verify = verifyBytes;

const digestMismatch = (message: RegExp | RegExp[]): Expected => ({
  code: "ARCHIVE_DIGEST_MISMATCH",
  exitCode: ExitCode.integrity,
  message,
});
const imageInvalid = (message: RegExp): Expected => ({
  code: "IMAGE_INVALID",
  exitCode: ExitCode.integrity,
  message,
});

describe("verify: every digest a snapshot file carries", () => {
  let dir: string;
  let remove: () => Promise<void>;
  let plain: WrittenSnapshot;
  let withVolume: WrittenSnapshot;
  before(async () => {
    ({ dir, remove } = await tempDir());
    plain = await writeSnapshot({ dir, compression: "none" });
    withVolume = await writeSnapshot({
      dir,
      compression: "gzip",
      volumes: { data: layerTar({ "a.txt": "volume" }) },
    });
  });
  after(() => remove());
  const entriesOf = (written: WrittenSnapshot): Entry[] => unpack(written.bytes).entries;

  it("passes a good file, returning every entry with the digest of the bytes read", async () => {
    for (const written of [plain, withVolume]) {
      const result = await verify(written.bytes);
      assert.equal(result.kind, "vm");
      if (result.kind !== "vm") return;
      for (const item of entriesOf(written))
        assert.deepEqual(
          result.read.find((e) => e.path === item.name),
          { path: item.name, size: item.data.length, sha256: sha256(item.data) },
        );
    }
  });

  describe("a single flipped byte", () => {
    const region = async (
      name: string,
      pick: (data: Buffer) => number,
      expected: Expected,
      written: () => WrittenSnapshot = () => plain,
    ) => {
      const entries = entriesOf(written());
      const target = entry(entries, name);
      const data = Buffer.from(target.data);
      data[pick(data)]! ^= 0x01;
      target.data = data;
      return rejectsVm(verify(pack(entries, "none")), expected);
    };

    it("in manifest.json fails against checksums.json, naming both digests", async () => {
      const entries = entriesOf(plain);
      const original = entry(entries, ENTRY.manifest).data;
      // A letter of the description: the JSON stays valid, so only the digest can tell.
      const at = original.indexOf("Base image") + 1;
      const flipped = Buffer.from(original);
      flipped[at]! ^= 0x01;
      entry(entries, ENTRY.manifest).data = flipped;
      await rejectsVm(
        verify(pack(entries, "none")),
        digestMismatch([
          /^manifest\.json does not match the snapshot's checksums: /,
          new RegExp(`expected sha256 ${sha256(original)}, got ${sha256(flipped)}`),
        ]),
      );
    });

    it("in a document fails against the manifest's digest of it", async () => {
      const error = await region(
        ENTRY.versions,
        (d) => d.indexOf("22.11.0"),
        digestMismatch(
          /^metadata\/versions\.json does not match the snapshot's checksums: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}$/,
        ),
      );
      assert.match(error.hint!, /changed or damaged after it was exported/);
      await region(ENTRY.readme, (d) => d.length - 2, digestMismatch(/^docs\/README\.md does not match/));
    });

    it("in the image's data fails against checksums.json", async () => {
      const image = plain.image.tar;
      const at = image.indexOf("hello\n");
      await region(
        ENTRY.image,
        () => at,
        digestMismatch(
          new RegExp(
            `^images/base\\.tar does not match the snapshot's checksums: expected sha256 ${sha256hex(image)}, got [0-9a-f]{64}$`,
          ),
        ),
      );
    });

    it("in a volume fails against checksums.json", async () => {
      await region(
        "volumes/data.tar",
        (d) => d.indexOf("volume"),
        digestMismatch(/^volumes\/data\.tar does not match the snapshot's checksums/),
        () => withVolume,
      );
    });

    it("in checksums.json fails (a digest of it no longer matches, or it no longer parses)", async () => {
      const entries = entriesOf(plain);
      const data = entry(entries, ENTRY.checksums).data;
      const text = data.toString("utf8");
      const at = text.indexOf('"sha256": "') + 11;
      const flipped = Buffer.from(data);
      flipped[at] = flipped[at] === 0x61 ? 0x62 : 0x61; // another hex digit
      entry(entries, ENTRY.checksums).data = flipped;
      await rejectsVm(
        verify(pack(entries, "none")),
        digestMismatch(/does not match the snapshot's checksums/),
      );
    });

    it("anywhere in a file, is refused or changes nothing: never a different snapshot", async () => {
      const baseline = await verify(plain.bytes);
      assert.equal(baseline.kind, "vm");
      const expected = baseline.kind === "vm" ? baseline.read : [];
      for (const compression of ["none", "gzip", "zstd"] as Compression[]) {
        const written =
          compression === "none" ? plain : await writeSnapshot({ dir, compression, image: plain.image });
        const bytes = written.bytes;
        let refused = 0;
        let same = 0;
        const stride = compression === "none" ? 257 : 41;
        for (let at = 0; at < bytes.length; at += stride) {
          const flipped = Buffer.from(bytes);
          flipped[at]! ^= 0x04;
          try {
            const result = await verify(flipped);
            assert.equal(result.kind, "vm");
            // Bytes no digest covers (gzip header fields, a tar checksum's terminator): the same snapshot.
            if (result.kind === "vm") {
              assert.deepEqual(
                result.read.filter((e) => e.path !== ENTRY.manifest && e.path !== ENTRY.checksums),
                expected.filter((e) => e.path !== ENTRY.manifest && e.path !== ENTRY.checksums),
                `byte ${at} of the ${compression} file`,
              );
              assert.equal(result.manifest.image_digest, written.manifest.image_digest);
            }
            same++;
          } catch (error) {
            assert.ok(error instanceof VmError, `byte ${at} of the ${compression} file: ${String(error)}`);
            assert.equal(error.exitCode, ExitCode.integrity, `byte ${at}: ${error.code} ${error.message}`);
            refused++;
          }
        }
        assert.ok(refused > same, `${compression}: ${refused} refused, ${same} harmless`);
      }
    });
  });

  describe("checksums.json", () => {
    const edit = async (
      change: (list: ReturnType<typeof checksumsOf>, entries: Entry[]) => void,
      expected: Expected,
    ) => {
      const entries = entriesOf(withVolume);
      const list = checksumsOf(entries);
      change(list, entries);
      entry(entries, ENTRY.checksums).data = json(list);
      return rejectsVm(verify(pack(entries, "gzip")), expected);
    };
    const forged = "f".repeat(64);

    it("with a changed record of a document names checksums.json (the manifest vouches for the document)", async () => {
      await edit(
        (list) => (list.entries.find((e) => e.path === ENTRY.packages)!.sha256 = forged),
        digestMismatch(
          new RegExp(
            `^checksums\\.json: its record of metadata/packages\\.json does not match the snapshot's checksums: expected sha256 ${forged}, got [0-9a-f]{64}$`,
          ),
        ),
      );
    });

    it("with a changed record of the image or a volume names that entry and both digests", async () => {
      await edit(
        (list) => (list.entries.find((e) => e.path === ENTRY.image)!.sha256 = forged),
        digestMismatch(
          new RegExp(
            `^images/base\\.tar does not match the snapshot's checksums: expected sha256 ${forged}, got ${sha256hex(withVolume.image.tar)}$`,
          ),
        ),
      );
      await edit(
        (list) => (list.entries.find((e) => e.path === "volumes/data.tar")!.sha256 = forged),
        digestMismatch(/^volumes\/data\.tar does not match .*expected sha256 f{64}/),
      );
    });

    it("with a changed size names the sizes", async () => {
      const size = withVolume.image.tar.length;
      await edit(
        (list) => (list.entries.find((e) => e.path === ENTRY.image)!.size = size + 1),
        digestMismatch(
          new RegExp(
            `^images/base\\.tar does not match the snapshot's checksums: expected size ${size + 1} bytes, got ${size} bytes$`,
          ),
        ),
      );
    });

    it("with a changed manifest_sha256 names manifest.json", async () => {
      const real = sha256(entry(entriesOf(withVolume), ENTRY.manifest).data);
      await edit(
        (list) => (list.manifest_sha256 = forged),
        digestMismatch(
          new RegExp(
            `^manifest\\.json does not match the snapshot's checksums: expected sha256 ${forged}, got ${real}$`,
          ),
        ),
      );
    });

    it("that leaves out an entry, or lists one the file does not hold, is refused", async () => {
      await edit((list) => (list.entries = list.entries.filter((e) => e.path !== ENTRY.image)), {
        code: "ARCHIVE_INVALID",
        exitCode: ExitCode.integrity,
        message: /^images\/base\.tar is not listed in checksums\.json$/,
      });
      await edit((list) => list.entries.push({ path: "volumes/ghost.tar", size: 1, sha256: forged }), {
        code: "ARCHIVE_INCOMPLETE",
        exitCode: ExitCode.integrity,
        message: /^The snapshot file has no volumes\/ghost\.tar$/,
      });
    });

    it("missing altogether means a truncated file", async () => {
      const entries = entriesOf(plain).filter((e) => e.name !== ENTRY.checksums);
      await rejectsVm(verify(pack(entries, "zstd")), {
        code: "ARCHIVE_TRUNCATED",
        exitCode: ExitCode.integrity,
        message: /^The snapshot file ends before checksums\.json: it is truncated$/,
      });
    });
  });

  describe("a forged, re-sealed file (every outer digest recomputed)", () => {
    it("whose manifest names another image fails: the image's config digest proves which it is", async () => {
      const other = `sha256:${"e".repeat(64)}`;
      const entries = reseal(entriesOf(plain), { editManifest: (m) => (m.image_digest = other) });
      await rejectsVm(
        verify(pack(entries, "gzip")),
        digestMismatch(
          new RegExp(
            `^images/base\\.tar: ${plain.image.configPath} does not match the snapshot's checksums: expected config digest ${other}, got ${plain.image.configDigest}$`,
          ),
        ),
      );
    });

    it("whose manifest lists other layers fails: the config's diff IDs are the layers", async () => {
      for (const layers of [
        [...plain.image.diffIds].reverse(),
        plain.image.diffIds.slice(1),
        [...plain.image.diffIds, `sha256:${"0".repeat(64)}`],
      ]) {
        const entries = reseal(entriesOf(plain), { editManifest: (m) => (m.layers = layers) });
        await rejectsVm(
          verify(pack(entries, "none")),
          imageInvalid(/^images\/base\.tar: its config lists other layers than the manifest$/),
        );
      }
    });

    it("whose image was swapped for another fails, though its new digests were recorded", async () => {
      const impostor = dockerSave({ layers: [{ "etc/hello": "evil\n" }] });
      const entries = entriesOf(plain);
      entry(entries, ENTRY.image).data = impostor.tar;
      reseal(entries);
      await rejectsVm(
        verify(pack(entries, "none")),
        digestMismatch(
          new RegExp(`expected config digest ${plain.image.configDigest}, got ${impostor.configDigest}`),
        ),
      );
    });

    it("whose manifest alone was changed fails against checksums.json", async () => {
      const entries = entriesOf(plain);
      const manifest = manifestOf(entries);
      manifest.description = "trust me";
      entry(entries, ENTRY.manifest).data = json(manifest);
      await rejectsVm(verify(pack(entries, "none")), digestMismatch(/^manifest\.json does not match/));
    });

    it("whose document changed and checksums.json was re-sealed, but not the manifest, fails", async () => {
      const entries = entriesOf(plain);
      entry(entries, ENTRY.versions).data = json({ languages: { node: "0.0.1" } });
      resealChecksums(entries);
      await rejectsVm(
        verify(pack(entries, "none")),
        digestMismatch(/^metadata\/versions\.json does not match/),
      );
    });

    it("whose listed volume was taken out is incomplete", async () => {
      const entries = reseal(entriesOf(withVolume).filter((e) => e.name !== "volumes/data.tar"));
      await rejectsVm(verify(pack(entries, "gzip")), {
        code: "ARCHIVE_INCOMPLETE",
        exitCode: ExitCode.integrity,
        message: /^The snapshot file has no volumes\/data\.tar$/,
      });
    });

    it("that changes only what no image digest covers verifies when unsigned: checksums prove integrity, not authorship", async () => {
      // docs/security.md: "Someone who can change the file can also rewrite its checksums". A signature
      // (signing.test.ts) is what refuses this file.
      const entries = entriesOf(plain);
      entry(entries, ENTRY.versions).data = json({ languages: { node: "0.0.1-forged" } });
      reseal(entries, { editManifest: (m) => (m.description = "forged") });
      const result = await verify(pack(entries, "gzip"));
      assert.equal(result.kind === "vm" && result.manifest.description, "forged");
    });
  });

  describe("the image inside", () => {
    const withImage = async (image: SavedImage, manifest?: (m: WrittenSnapshot["manifest"]) => void) =>
      (await writeSnapshot({ dir, compression: "gzip", image, ...(manifest ? { manifest } : {}) })).bytes;

    it("refuses a legacy layer.tar that does not hash to its diff ID, naming the layer and both digests", async () => {
      const good = dockerSave();
      const wrong = [`sha256:${"a".repeat(64)}`, good.diffIds[1]!];
      // The config and the manifest agree on the wrong digest; the layer's bytes do not.
      const image = dockerSave({ diffIds: wrong });
      await rejectsVm(
        verify(await withImage(image)),
        digestMismatch(
          new RegExp(
            `^images/base\\.tar: [0-9a-f]{64}/layer\\.tar does not match the snapshot's checksums: expected layer digest sha256:a{64}, got ${good.diffIds[0]}$`,
          ),
        ),
      );
    });

    it("refuses a legacy layer.tar the save's manifest names but the tar lacks", async () => {
      const image = dockerSave({
        edit: (items, { layerPaths }) => {
          const i = items.findIndex((item) => item.name === layerPaths[1]);
          items.splice(i, 1);
        },
      });
      await rejectsVm(
        verify(await withImage(image)),
        digestMismatch(
          /layer\.tar does not match .*expected layer digest sha256:[0-9a-f]{64}, got sha256:\(missing\)/,
        ),
      );
    });

    it("refuses an OCI blob whose bytes do not hash to its name", async () => {
      const image = dockerSave({
        layout: "oci",
        edit: (items, { layerPaths }) => {
          const layer = items.find((item) => item.name === layerPaths[0])!;
          layer.data = layerTar({ "etc/hello": "tampered\n" });
        },
      });
      const name = image.diffIds[0]!.slice(7);
      await rejectsVm(
        verify(await withImage(image)),
        digestMismatch(
          new RegExp(
            `^images/base\\.tar: blobs/sha256/${name} does not match the snapshot's checksums: expected content digest sha256:${name}, got sha256:[0-9a-f]{64}$`,
          ),
        ),
      );
    });

    it("refuses an exporter's manifest whose image_digest is not the config's", async () => {
      const image = dockerSave({ layout: "oci" });
      // What a containerd store calls the image (its manifest digest) is not its identity.
      await rejectsVm(
        verify(await withImage(image, (m) => (m.image_digest = image.engineId))),
        digestMismatch(new RegExp(`expected config digest ${image.engineId}, got ${image.configDigest}`)),
      );
    });

    it("refuses a save without manifest.json, or whose manifest.json is not JSON or names no config", async () => {
      const cases: [(items: TarItem[]) => void, RegExp][] = [
        [
          (items) =>
            items.splice(
              items.findIndex((i) => i.name === "manifest.json"),
              1,
            ),
          /^images\/base\.tar: it has no manifest\.json$/,
        ],
        [
          (items) => (items.find((i) => i.name === "manifest.json")!.data = "[{]"),
          /^images\/base\.tar cannot be loaded safely: its manifest\.json is not JSON$/,
        ],
        [
          (items) => (items.find((i) => i.name === "manifest.json")!.data = "[]"),
          /^images\/base\.tar: its manifest\.json names no image config$/,
        ],
        [
          (items) => (items.find((i) => i.name === "manifest.json")!.data = '[{"Config":"nowhere.json"}]'),
          /^images\/base\.tar: its config nowhere\.json is missing$/,
        ],
      ];
      for (const [edit, message] of cases) {
        const image = dockerSave({ edit });
        await rejectsVm(verify(await withImage(image)), imageInvalid(message));
      }
    });

    it("refuses tags, links and paths outside the archive inside the image (the engine would apply them)", async () => {
      const tagged = dockerSave({
        edit: (items) => {
          const manifest = items.find((i) => i.name === "manifest.json")!;
          manifest.data = String(manifest.data).replace('"RepoTags":null', '"RepoTags":["debian:12"]');
        },
      });
      await rejectsVm(verify(await withImage(tagged)), {
        code: "IMAGE_NAMES_REFUSED",
        exitCode: ExitCode.integrity,
        message: /^images\/base\.tar names image tags \(debian:12\)/,
      });
      const linked = dockerSave({
        edit: (items) => items.unshift({ name: "evil", type: "symlink", linkname: "/etc/passwd" }),
      });
      await rejectsVm(
        verify(await withImage(linked)),
        imageInvalid(
          /^images\/base\.tar cannot be loaded safely: 'evil' is a symlink to '\/etc\/passwd', which docker save never writes$/,
        ),
      );
      const hard = dockerSave({
        edit: (items) => items.unshift({ name: "evil", type: "link", linkname: "manifest.json" }),
      });
      await rejectsVm(
        verify(await withImage(hard)),
        imageInvalid(/'evil' is a hard link; images hold files/),
      );
      const climbing = dockerSave({
        edit: (items) => items.unshift({ name: "../../etc/cron.d/x", data: "* * * * * root sh\n" }),
      });
      await rejectsVm(
        verify(await withImage(climbing)),
        imageInvalid(
          /^images\/base\.tar cannot be loaded safely: '\.\.\/\.\.\/etc\/cron\.d\/x' points outside the archive$/,
        ),
      );
    });

    it("reports the digests before the guard's complaint: a damaged file is named as damaged first", async () => {
      const tagged = dockerSave({
        edit: (items) => {
          const manifest = items.find((i) => i.name === "manifest.json")!;
          manifest.data = String(manifest.data).replace('"RepoTags":null', '"RepoTags":["debian:12"]');
        },
      });
      const entries = unpack(await withImage(tagged)).entries;
      const list = checksumsOf(entries);
      list.entries.find((e) => e.path === ENTRY.image)!.sha256 = "0".repeat(64);
      entry(entries, ENTRY.checksums).data = json(list);
      await rejectsVm(verify(pack(entries, "gzip")), digestMismatch(/^images\/base\.tar does not match/));
    });

    it("reports a save stream that is not a tar as unreadable", async () => {
      const verifier = new ImageVerifier();
      Readable.from([Buffer.alloc(2048, 0x41)]).pipe(verifier.input);
      await rejectsVm(verifier.identity(), {
        code: "IMAGE_INVALID",
        exitCode: ExitCode.integrity,
        message: /^images\/base\.tar is not a readable docker save stream: /,
      });
    });
  });
});
