import { createHash } from "node:crypto";
import { Writable } from "node:stream";
import { TarWalker } from "../lib/tar-walk.ts";
import { VmError } from "../errors.ts";
import type { ArchiveContents } from "./archive-reader.ts";
import { ENTRY, type Manifest } from "./format.ts";

function mismatch(path: string, expected: string, actual: string, what = "sha256"): VmError {
  return new VmError(
    "ARCHIVE_DIGEST_MISMATCH",
    `${path} does not match the snapshot's checksums: expected ${what} ${expected}, got ${actual}`,
    {
      hint: "The file was changed or damaged after it was exported; get a fresh copy (nothing was imported)",
    },
  );
}

/**
 * Checks every entry read against the digests the file carries: the head entries against manifest.json,
 * and everything (manifest.json and the image included) against the trailing checksums.json.
 */
export function verifyContents(contents: ArchiveContents): void {
  const { manifest, checksums } = contents;
  const read = new Map(contents.read.map((e) => [e.path, e]));
  // A damaged manifest is named as such (before the entries it would misjudge), when the trailer is there.
  const manifestDigest = read.get(ENTRY.manifest)!.sha256;
  if (checksums && manifestDigest !== checksums.manifest_sha256)
    throw mismatch(ENTRY.manifest, checksums.manifest_sha256, manifestDigest);
  for (const expected of manifest.entries) {
    const actual = read.get(expected.path);
    if (!actual) throw invalidMissing(expected.path);
    if (actual.size !== expected.size)
      throw mismatch(expected.path, `${expected.size} bytes`, `${actual.size} bytes`, "size");
    if (actual.sha256 !== expected.sha256) throw mismatch(expected.path, expected.sha256, actual.sha256);
  }
  if (contents.stoppedAtImage) return;
  for (const path of manifest.streamed) if (!read.has(path)) throw invalidMissing(path);
  if (!checksums) {
    throw new VmError("ARCHIVE_TRUNCATED", "The snapshot file ends before checksums.json: it is truncated", {
      hint: "The copy is incomplete; transfer it again",
    });
  }
  if (manifestDigest !== checksums.manifest_sha256)
    throw mismatch(ENTRY.manifest, checksums.manifest_sha256, manifestDigest);
  const listed = new Map(checksums.entries.map((e) => [e.path, e]));
  for (const entry of contents.read) {
    if (entry.path === ENTRY.checksums || entry.path === ENTRY.signature) continue;
    const expected = listed.get(entry.path);
    if (!expected) throw new VmError("ARCHIVE_INVALID", `${entry.path} is not listed in checksums.json`);
    if (expected.size === entry.size && expected.sha256 === entry.sha256) continue;
    // A head entry the (verified) manifest vouches for is right: then it is checksums.json that changed.
    const vouched = manifest.entries.some((e) => e.path === entry.path && e.sha256 === entry.sha256);
    const what = vouched ? `${ENTRY.checksums}: its record of ${entry.path}` : entry.path;
    if (expected.size !== entry.size)
      throw mismatch(what, `${expected.size} bytes`, `${entry.size} bytes`, "size");
    throw mismatch(what, expected.sha256, entry.sha256);
  }
  for (const path of listed.keys()) if (!read.has(path)) throw invalidMissing(path);
}

function invalidMissing(path: string): VmError {
  return new VmError("ARCHIVE_INCOMPLETE", `The snapshot file has no ${path}`, {
    hint: "The file is damaged or truncated; get a fresh copy",
  });
}

const SMALL = 8 * 1024 * 1024;

/**
 * Checks the image inside images/base.tar as it streams: its config's sha256 must be the manifest's
 * image_digest, the config's layers the manifest's, each legacy layer.tar must hash to its diff ID and
 * each OCI blob to its name. Feed it a copy of the stream through `input`; `result()` says what failed.
 */
export class ImageVerifier {
  readonly input: Writable;
  private readonly small = new Map<string, Buffer>();
  private readonly hashes = new Map<string, string>();
  private readonly sizes = new Map<string, number>();
  /** The first bytes of each entry: enough to tell a gzip or zstd blob from a plain tar. */
  private readonly heads = new Map<string, Buffer>();
  private readonly done: Promise<void>;

  constructor() {
    // The same synchronous walker as the ImageGuard's: every file entry is hashed as it passes, small
    // ones (manifest.json, the config, the OCI index and manifests) kept to be read once it has all passed.
    const walker = new TarWalker((entry) => {
      if (entry.type !== "file") return undefined;
      const hash = createHash("sha256");
      const keep = entry.size <= SMALL ? ([] as Buffer[]) : undefined;
      let head: Buffer | undefined;
      return {
        data: (chunk) => {
          hash.update(chunk);
          keep?.push(Buffer.from(chunk));
          head ??= Buffer.from(chunk.subarray(0, 4));
        },
        end: () => {
          this.sizes.set(entry.name, entry.size);
          if (head) this.heads.set(entry.name, head);
          this.hashes.set(entry.name, hash.digest("hex"));
          if (keep) this.small.set(entry.name, Buffer.concat(keep));
        },
      };
    });
    let failure: Error | undefined;
    let settle!: (error?: Error) => void;
    this.done = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    // Settled only through result()/identity(): nobody may have asked yet when a damaged image fails.
    this.done.catch(() => {});
    // A damaged image must not stall the import that feeds this: once parsing fails, input is discarded.
    this.input = new Writable({
      highWaterMark: 1024 * 1024,
      write: (chunk: Buffer, _encoding, callback) => {
        if (!failure) {
          try {
            walker.push(chunk, []);
          } catch (error) {
            failure = error as Error;
            settle(failure);
          }
        }
        callback();
      },
      final: (callback) => {
        if (!failure) {
          try {
            walker.finish();
            settle();
          } catch (error) {
            failure = error as Error;
            settle(failure);
          }
        }
        callback();
      },
    });
  }

  /** Checks the image against what a vm snapshot's manifest records: its config digest and layers. */
  async result(manifest: Manifest): Promise<void> {
    const image = await this.identity();
    if (image.configDigest !== manifest.image_digest)
      throw mismatch(
        `images/base.tar: ${image.configPath}`,
        manifest.image_digest,
        image.configDigest,
        "config digest",
      );
    if (JSON.stringify(image.diffIds) !== JSON.stringify(manifest.layers))
      throw invalidImage("its config lists other layers than the manifest");
  }

  /**
   * What the image tar proves about itself, once it has streamed: its config digest (the sha256 of the
   * config file its manifest.json names), the layers that config lists (each legacy layer.tar must hash to
   * its diff ID, each OCI blob to its name), and the OCI manifests (blobs the index lists) that point at
   * that config: the IDs a containerd store gives the image.
   */
  async identity(): Promise<{
    configPath: string;
    configDigest: string;
    diffIds: string[];
    manifestDigests: string[];
  }> {
    try {
      await this.done;
    } catch (error) {
      throw new VmError(
        "IMAGE_INVALID",
        `images/base.tar is not a readable docker save stream: ${(error as Error).message}`,
      );
    }
    const saveManifest = this.small.get("manifest.json");
    if (!saveManifest) throw invalidImage("it has no manifest.json");
    let entries: { Config?: string; Layers?: string[] }[];
    try {
      entries = JSON.parse(saveManifest.toString("utf8")) as typeof entries;
    } catch {
      throw invalidImage("its manifest.json is not JSON");
    }
    const first = Array.isArray(entries) ? entries[0] : undefined;
    if (!first?.Config) throw invalidImage("its manifest.json names no image config");
    const configHash = this.hashes.get(first.Config);
    const configBytes = this.small.get(first.Config);
    if (!configHash || !configBytes) throw invalidImage(`its config ${first.Config} is missing`);
    const configDigest = `sha256:${configHash}`;
    let config: { rootfs?: { diff_ids?: string[] } };
    try {
      config = JSON.parse(configBytes.toString("utf8")) as typeof config;
    } catch {
      throw invalidImage(`its config ${first.Config} is not JSON`);
    }
    const diffIds = config.rootfs?.diff_ids ?? [];
    for (const [name, digest] of this.hashes) {
      const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
      if (blob && blob[1] !== digest)
        throw mismatch(`images/base.tar: ${name}`, `sha256:${blob[1]}`, `sha256:${digest}`, "content digest");
    }
    (first.Layers ?? []).forEach((layer, i) => {
      if (!layer.endsWith("/layer.tar")) return;
      const actual = `sha256:${this.hashes.get(layer) ?? "(missing)"}`;
      if (actual !== diffIds[i])
        throw mismatch(`images/base.tar: ${layer}`, diffIds[i] ?? "(none)", actual, "layer digest");
    });
    return {
      configPath: first.Config,
      configDigest,
      diffIds,
      manifestDigests: this.manifestsOf(configDigest),
    };
  }

  /**
   * The image's parts as a registry holds them, once the image has streamed and `identity()` passed:
   * its config, and each layer as the tar has it (a legacy layer.tar, or an OCI blob, maybe compressed),
   * with the sha256 of those very bytes, their size and their compression.
   */
  async parts(): Promise<{
    config: { path: string; digest: string; bytes: Buffer };
    layers: { path: string; digest: string; size: number; compression: "gzip" | "zstd" | "none" }[];
  }> {
    const image = await this.identity();
    const saveManifest = JSON.parse(this.small.get("manifest.json")!.toString("utf8")) as {
      Layers?: string[];
    }[];
    const layers = (saveManifest[0]?.Layers ?? []).map((path) => {
      const hash = this.hashes.get(path);
      if (!hash) throw invalidImage(`its layer ${path} is missing`);
      const head = this.heads.get(path) ?? Buffer.alloc(0);
      const compression: "gzip" | "zstd" | "none" =
        head[0] === 0x1f && head[1] === 0x8b
          ? "gzip"
          : head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528
            ? "zstd"
            : "none";
      return { path, digest: `sha256:${hash}`, size: this.sizes.get(path) ?? 0, compression };
    });
    return {
      config: {
        path: image.configPath,
        digest: image.configDigest,
        bytes: this.small.get(image.configPath)!,
      },
      layers,
    };
  }

  /** Digests of the index's manifests whose blob is in the tar and names `configDigest` as its config. */
  private manifestsOf(configDigest: string): string[] {
    const index = this.small.get("index.json");
    if (!index) return [];
    let listed: { manifests?: { digest?: unknown }[] };
    try {
      listed = JSON.parse(index.toString("utf8")) as typeof listed;
    } catch {
      return [];
    }
    const out: string[] = [];
    for (const { digest } of listed.manifests ?? []) {
      if (typeof digest !== "string" || !/^sha256:[0-9a-f]{64}$/.test(digest)) continue;
      const blob = this.small.get(`blobs/sha256/${digest.slice(7)}`);
      try {
        const manifest = blob
          ? (JSON.parse(blob.toString("utf8")) as { config?: { digest?: unknown } })
          : undefined;
        if (manifest?.config?.digest === configDigest) out.push(digest);
      } catch {
        // not a manifest: not one of the image's IDs
      }
    }
    return out;
  }
}

function invalidImage(message: string): VmError {
  return new VmError("IMAGE_INVALID", `images/base.tar: ${message}`, {
    hint: "The file was changed or damaged after it was exported; get a fresh copy (nothing was imported)",
  });
}
