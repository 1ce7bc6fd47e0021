import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ExitCode } from "../errors.ts";
import { END_OF_ARCHIVE } from "../lib/tar-header.ts";
import { ImageGuard, guardedImage, type NamePolicy } from "./image-guard.ts";
import { checkVmError, rejectsVm, type Expected } from "./testing/assert.ts";
import { dockerSave } from "./testing/docker-save.ts";
import { borrowedChunks } from "./testing/snapshot.ts";
import { resum, tarEntry, type TarItem } from "./testing/tar.ts";

/** The bytes through a guard in pieces of `piece`: what it let through, and what it threw. */
function run(bytes: Buffer, policy: NamePolicy = "refuse", piece = 512) {
  const guard = new ImageGuard(policy);
  const out: Buffer[] = [];
  let error: unknown;
  try {
    for (let at = 0; at < bytes.length; at += piece) out.push(...guard.push(bytes.subarray(at, at + piece)));
    out.push(...guard.finish());
  } catch (e) {
    error = e;
  }
  return { out: Buffer.concat(out), error, guard };
}

const unsafe = (why: RegExp): Expected => ({
  code: "IMAGE_INVALID",
  exitCode: ExitCode.integrity,
  message: [/^images\/base\.tar cannot be loaded safely: /, why],
});

/** A genuine save with `extra` entries put first. */
const saveWith = (...extra: TarItem[]) => dockerSave({ edit: (items) => items.unshift(...extra) }).tar;

describe("ImageGuard: what docker save never writes", () => {
  it("passes both save layouts through byte for byte, in any chunking, the end released last", () => {
    for (const layout of ["legacy", "oci"] as const) {
      const image = dockerSave({ layout });
      for (const piece of [1, 100, 512, 4096, image.tar.length]) {
        const { out, error, guard } = run(image.tar, "refuse", piece);
        assert.equal(error, undefined, `${layout}, pieces of ${piece}`);
        assert.ok(out.equals(image.tar));
        assert.deepEqual(guard.names, []);
        assert.deepEqual(guard.manifestDigests, layout === "oci" ? [image.engineId] : []);
      }
    }
  });

  it("refuses paths that climb out or start at /, however they are spelled", () => {
    for (const name of [
      "../x",
      "a/../../x",
      "./../x",
      "/x",
      "//etc/passwd",
      "blobs/../../../root/.ssh/authorized_keys",
      "..",
    ]) {
      const { out, error } = run(saveWith({ name, data: "x" }));
      checkVmError(
        error,
        unsafe(
          new RegExp(
            `^images/base\\.tar cannot be loaded safely: '${name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}' points outside the archive$`,
          ),
        ),
      );
      assert.ok(out.length === 0, `${name}: nothing reaches the engine`);
    }
  });

  it("refuses a climbing path hidden in a PAX header", () => {
    const { error } = run(saveWith({ name: "innocent", pax: { path: "../../etc/cron.d/x" }, data: "x" }));
    checkVmError(error, unsafe(/'\.\.\/\.\.\/etc\/cron\.d\/x' points outside the archive/));
  });

  it("refuses hard links, symlinks outside the legacy layer layout, devices and FIFOs", () => {
    const layer = "a".repeat(64);
    const cases: [TarItem, RegExp][] = [
      [{ name: "x", type: "link", linkname: "manifest.json" }, /'x' is a hard link; images hold files/],
      [
        { name: "manifest.json", type: "symlink", linkname: "/etc/passwd" },
        /'manifest\.json' is a symlink to '\/etc\/passwd', which docker save never writes/,
      ],
      [
        { name: `${layer}/layer.tar`, type: "symlink", linkname: "../../etc/shadow" },
        /is a symlink to '\.\.\/\.\.\/etc\/shadow'/,
      ],
      [{ name: `${layer}/json`, type: "symlink", linkname: `../${"b".repeat(64)}/json` }, /is a symlink to/],
      [{ name: "dev", type: "char" }, /'dev' is a special entry; images hold files/],
      [{ name: "pipe", type: "fifo" }, /'pipe' is a special entry/],
    ];
    for (const [item, why] of cases) {
      const { out, error } = run(saveWith(item));
      checkVmError(error, unsafe(why));
      assert.ok(out.length === 0);
    }
  });

  it("refuses a GNU sparse file (its data is not laid out as a file's)", () => {
    const { error } = run(
      saveWith({ name: "sparse", pax: { "GNU.sparse.major": "1", "GNU.sparse.minor": "0" }, data: "x" }),
    );
    checkVmError(error, unsafe(/'sparse' is a special entry/));
  });

  it("refuses a name file too big to be an image's, or one that is not JSON", () => {
    const big = dockerSave({
      edit: (items) => (items.find((i) => i.name === "manifest.json")!.data = `[${" ".repeat(1024 * 1024)}]`),
    }).tar;
    checkVmError(run(big).error, unsafe(/its manifest\.json is 1048578 bytes, far more than any image's/));
    for (const name of ["manifest.json", "index.json", "repositories"]) {
      const bad = dockerSave({
        edit: (items) => {
          const found = items.find((i) => i.name === name);
          if (found) found.data = "not json";
          else items.push({ name, data: "not json" });
        },
      }).tar;
      checkVmError(run(bad).error, unsafe(new RegExp(`its ${name} is not JSON`)));
    }
  });

  it("reads names from any small JSON document: a repositories-shaped file under another path", () => {
    const { error } = run(
      saveWith({ name: "blobs/sha256/x", data: JSON.stringify({ postgres: { "16": "f".repeat(64) } }) }),
    );
    checkVmError(error, {
      code: "IMAGE_NAMES_REFUSED",
      exitCode: ExitCode.integrity,
      message: /names image tags \(postgres:16\)/,
    });
  });

  it("refuses a damaged tar, one cut inside an entry, and bytes after its end", () => {
    const tar = dockerSave().tar;
    const header = Buffer.from(tar);
    header[3]! ^= 0x01; // the first header's name, its checksum not made right
    checkVmError(
      run(header).error,
      unsafe(/its tar stream is damaged: Not a tar header \(checksum mismatch\)/),
    );
    checkVmError(run(tar.subarray(0, 512 + 100)).error, unsafe(/it ends in the middle of an entry/));
    checkVmError(
      run(Buffer.concat([tar, Buffer.from("x")])).error,
      unsafe(
        /tar stream is damaged: non-zero byte at offset \d+ of the archive, after the end-of-archive block/,
      ),
    );
    // A 1-byte entry first: its data is followed by 511 bytes of padding.
    const withPadding = Buffer.concat([tarEntry({ name: "x", data: "x" }), tar]);
    withPadding[512 + 10] = 1;
    checkVmError(run(withPadding).error, unsafe(/in the padding after an entry's data/));
  });

  it("refuses a header rewritten to a link type after the fact (checksum made right)", () => {
    const tar = Buffer.from(saveWith({ name: "evil", data: "" }));
    tar.write("1", 156, 1, "latin1");
    tar.write("manifest.json", 157, 100, "utf8");
    resum(tar.subarray(0, 512));
    checkVmError(run(tar).error, unsafe(/'evil' is a hard link/));
  });

  it("guardedImage streams a good image unchanged from borrowed chunks, and fails the stream on a refusal", async () => {
    const image = dockerSave({ layout: "oci" });
    const chunks: Buffer[] = [];
    for await (const chunk of guardedImage(copying(borrowedChunks(image.tar, 700)), new ImageGuard("refuse")))
      chunks.push(chunk as Buffer);
    assert.ok(Buffer.concat(chunks).equals(image.tar));

    const hostile = saveWith({ name: "../escape", data: "x" });
    const stream = guardedImage(copying(borrowedChunks(hostile, 700)), new ImageGuard("refuse"));
    const received: Buffer[] = [];
    await rejectsVm(
      (async () => {
        for await (const chunk of stream) received.push(chunk as Buffer);
      })(),
      unsafe(/'\.\.\/escape' points outside the archive/),
    );
    assert.ok(Buffer.concat(received).length < hostile.length - END_OF_ARCHIVE.length);
  });

  it("strips names in strip mode and still refuses links and climbing paths", () => {
    const tagged = dockerSave({
      edit: (items) => {
        const m = items.find((i) => i.name === "manifest.json")!;
        m.data = String(m.data).replace('"RepoTags":null', '"RepoTags":["app:1"]');
      },
    }).tar;
    const stripped = run(tagged, "strip");
    assert.equal(stripped.error, undefined);
    assert.deepEqual(stripped.guard.names, ["app:1"]);
    assert.ok(!stripped.out.toString("latin1").includes("app:1"));
    checkVmError(
      run(saveWith({ name: "../x", data: "" }), "strip").error,
      unsafe(/points outside the archive/),
    );
    checkVmError(
      run(saveWith({ name: "l", type: "link", linkname: "x" }), "strip").error,
      unsafe(/hard link/),
    );
  });
});

/** The chunks copied as they come (guardedImage may keep what it is given). */
async function* copying(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const chunk of source) yield Buffer.from(chunk);
}
