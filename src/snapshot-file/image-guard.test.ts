import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import tar from "tar-stream";
import { END_OF_ARCHIVE, encodeHeader, padding } from "../lib/tar-header.ts";
import { isVmError } from "../errors.ts";
import { ImageGuard, type NamePolicy } from "./image-guard.ts";

interface Item {
  name: string;
  data?: string | Buffer;
  type?: "symlink" | "link" | "directory";
  linkname?: string;
  pax?: string;
}

/** A tar as Go's writer lays it out: ustar headers, PAX where asked, the end-of-archive blocks. */
function build(items: Item[]): Buffer {
  const parts: Buffer[] = [];
  for (const item of items) {
    const data = Buffer.from(item.data ?? "");
    if (item.pax) {
      const body = ` path=${item.pax}\n`;
      const record = Buffer.from(`${body.length + String(body.length + 3).length}${body}`);
      parts.push(
        retype(encodeHeader({ name: "PaxHeaders/x", size: record.length }), "x"),
        record,
        padding(record.length),
      );
    }
    let header = encodeHeader({ name: item.name, size: item.type ? 0 : data.length });
    if (item.type)
      header = retype(header, { symlink: "2", link: "1", directory: "5" }[item.type], item.linkname);
    parts.push(header);
    if (!item.type) parts.push(data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

function retype(header: Buffer, flag: string, linkname?: string): Buffer {
  const out = Buffer.from(header);
  out.write(flag, 156, 1, "latin1");
  if (linkname) out.write(linkname, 157, 100, "utf8");
  out.fill(" ", 148, 156);
  let sum = 0;
  for (const byte of out) sum += byte;
  out.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8, "latin1");
  return out;
}

/** Runs `bytes` through a guard in pieces of `piece` bytes: what reached the engine, and the error if any. */
function run(
  bytes: Buffer,
  policy: NamePolicy,
  piece: number,
): { out: Buffer; error?: unknown; guard: ImageGuard } {
  const guard = new ImageGuard(policy);
  const out: Buffer[] = [];
  try {
    for (let at = 0; at < bytes.length; at += piece) out.push(...guard.push(bytes.subarray(at, at + piece)));
    out.push(...guard.finish());
  } catch (error) {
    return { out: Buffer.concat(out), error, guard };
  }
  return { out: Buffer.concat(out), guard };
}

async function entries(bytes: Buffer): Promise<Map<string, string>> {
  const extract = tar.extract();
  const found = new Map<string, string>();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      found.set(entry.header.name, Buffer.concat(chunks).toString("utf8"));
    }
  })();
  Readable.from([bytes]).pipe(extract);
  await done;
  return found;
}

const layer = "a".repeat(64);
const config = `blobs/sha256/${"c".repeat(64)}`;
const genuine = (manifest: string, extra: Item[] = []) =>
  build([
    { name: `${layer}/layer.tar`, data: Buffer.alloc(3000, 7) },
    { name: config, data: '{"architecture":"amd64","rootfs":{"diff_ids":[]}}' },
    ...extra,
    { name: "manifest.json", data: manifest },
  ]);
const PIECES = [1, 7, 512, 513, 100_000];

describe("ImageGuard", () => {
  it("passes a save that names no tag through unchanged, however it is split", () => {
    const bytes = genuine(`[{"Config":"${config}","RepoTags":null,"Layers":["${layer}/layer.tar"]}]`, [
      {
        name: "index.json",
        data: '{"schemaVersion":2,"manifests":[{"digest":"sha256:' + "d".repeat(64) + '"}]}',
      },
    ]);
    for (const piece of PIECES) {
      const { out, error, guard } = run(bytes, "refuse", piece);
      assert.equal(error, undefined);
      assert.ok(out.equals(bytes), `split every ${piece} bytes`);
      assert.deepEqual(guard.manifestDigests, [`sha256:${"d".repeat(64)}`]);
    }
  });

  it("refuses RepoTags, a repositories file and OCI name annotations, and never hands on the archive's end", () => {
    const cases = [
      genuine(`[{"Config":"${config}","RepoTags":["vmbars/victim:1"],"Layers":[]}]`),
      genuine("[]", [{ name: "repositories", data: `{"vmbars/victim":{"1":"${layer}"}}` }]),
      genuine("[]", [
        {
          name: "index.json",
          data: JSON.stringify({
            manifests: [
              { digest: "x", annotations: { "io.containerd.image.name": "docker.io/library/debian:12" } },
            ],
          }),
        },
      ]),
      genuine("[]", [
        {
          name: "index.json",
          data: JSON.stringify({
            manifests: [{ annotations: { "org.opencontainers.image.ref.name": "12" } }],
          }),
        },
      ]),
      // A name file under another path, or one reached by a PAX path, is still read.
      genuine("[]", [{ name: `blobs/sha256/${"e".repeat(64)}`, data: '[{"RepoTags":["debian:12"]}]' }]),
      genuine("[]", [{ name: "short", pax: "./x/../repositories", data: `{"postgres":{"16":"${layer}"}}` }]),
    ];
    for (const bytes of cases) {
      for (const piece of PIECES) {
        const { out, error } = run(bytes, "refuse", piece);
        assert.ok(isVmError(error, "IMAGE_NAMES_REFUSED"), String(error));
        // The engine applies names only after the end of the archive, which it must never get.
        assert.ok(out.length <= bytes.length - END_OF_ARCHIVE.length, `split every ${piece}`);
      }
    }
  });

  it("strips the names in strip mode: RepoTags emptied, repositories dropped, annotations removed, the rest byte for byte", async () => {
    const layerBytes = Buffer.alloc(3000, 7);
    const bytes = build([
      { name: `${layer}/layer.tar`, data: layerBytes },
      { name: "repositories", data: `{"vm-snapshot/x":{"base":"${layer}"}}` },
      {
        name: "index.json",
        data: JSON.stringify({
          manifests: [{ digest: "sha256:1", annotations: { "io.containerd.image.name": "x:1", keep: "y" } }],
        }),
      },
      {
        name: "long",
        pax: "manifest.json",
        data: `[{"Config":"c.json","RepoTags":["vm-snapshot/x:base"],"Layers":[]}]`,
      },
      { name: "c.json", data: "{}" },
    ]);
    for (const piece of PIECES) {
      const { out, error, guard } = run(bytes, "strip", piece);
      assert.equal(error, undefined);
      assert.deepEqual(guard.names, ["vm-snapshot/x:base", "x:1", "vm-snapshot/x:base"]);
      const got = await entries(out);
      assert.deepEqual([...got.keys()], [`${layer}/layer.tar`, "index.json", "manifest.json", "c.json"]);
      assert.equal(got.get(`${layer}/layer.tar`), layerBytes.toString("utf8"));
      assert.deepEqual(JSON.parse(got.get("manifest.json")!), [
        { Config: "c.json", RepoTags: null, Layers: [] },
      ]);
      assert.deepEqual(JSON.parse(got.get("index.json")!), {
        manifests: [{ digest: "sha256:1", annotations: { keep: "y" } }],
      });
    }
  });

  it("refuses links, paths outside the archive and duplicates; allows the legacy layout's layer links", () => {
    const other = "b".repeat(64);
    const refused: Item[][] = [
      [{ name: "manifest.json", type: "symlink", linkname: `blobs/sha256/${"e".repeat(64)}` }],
      [{ name: "x", type: "link", linkname: "manifest.json" }],
      [{ name: "dir", type: "symlink", linkname: "." }],
      [{ name: "../manifest.json", data: "[]" }],
      [{ name: "/etc/passwd", data: "x" }],
      [
        { name: "manifest.json", data: "[]" },
        { name: "./manifest.json", data: "[]" },
      ],
    ];
    for (const items of refused) {
      const { error } = run(build(items), "refuse", 512);
      assert.ok(isVmError(error, "IMAGE_INVALID"), `${JSON.stringify(items)}: ${String(error)}`);
    }
    const legacy = build([
      { name: `${other}/layer.tar`, data: "layer" },
      { name: `${layer}/layer.tar`, type: "symlink", linkname: `../${other}/layer.tar` },
      { name: "manifest.json", data: "[]" },
    ]);
    assert.equal(run(legacy, "refuse", 512).error, undefined);
  });

  it("refuses an archive that stops without its end-of-archive block", () => {
    const bytes = genuine("[]");
    const { error } = run(bytes.subarray(0, bytes.length - END_OF_ARCHIVE.length), "refuse", 512);
    assert.ok(isVmError(error, "IMAGE_INVALID"));
  });
});
