import { posix } from "node:path";
import { Readable } from "node:stream";
import { BLOCK, encodeHeader, padding } from "../lib/tar-header.ts";
import { VmError } from "../errors.ts";
import { TarWalker, type EntryHandler, type TarEntry } from "../lib/tar-walk.ts";

/**
 * What an image tar may do to the engine beyond adding its image: name it. `docker load` applies the
 * tags a save names (RepoTags in manifest.json, the legacy `repositories` file, an image-name annotation
 * in an OCI index.json), which would let a shared file re-point `debian:12` or `postgres:16` on the
 * machine that imports it. vm exports by image ID, so a genuine vm file names nothing: such files are
 * refused ("refuse"). vm 3.x saved tagged images, so its files are loaded with the names taken out
 * ("strip") and vm tags the image itself, in its own namespace.
 *
 * The engine applies names only once it has read the whole tar. So the guard holds back the end of the
 * archive (its end-of-archive blocks) until every entry has passed its checks: a refused file reaches the
 * engine cut short, and the engine drops it. In "strip" mode the name-bearing entries themselves are held,
 * rewritten without their names and sent in their place.
 *
 * It also refuses what docker save never writes and what could make the engine read the archive other
 * than the way it was checked: hard links, devices, FIFOs, sparse files, paths that climb out ("..") or
 * start at "/", duplicate paths (the later would overwrite the checked one) and symlinks other than the
 * legacy layout's links between identical layers.
 */
export type NamePolicy = "refuse" | "strip";

/** The files `docker load` reads names from, at the archive's root. */
const NAME_FILES = new Set(["manifest.json", "repositories", "index.json"]);
const MAX_NAME_FILE = 1024 * 1024;
/** Small files are also read for names whatever they are called (a name file under another path). */
const MAX_SNIFFED = 1024 * 1024;
const LEGACY_LAYER = /^[0-9a-f]{64}\/layer\.tar$/;
const NAME_ANNOTATIONS = ["io.containerd.image.name", "org.opencontainers.image.ref.name"];

export class ImageGuard {
  readonly #policy: NamePolicy;
  readonly #walker: TarWalker;
  /** Input not yet handed on, as [stream offset, bytes]. */
  readonly #queue: { offset: number; bytes: Buffer }[] = [];
  #pushed = 0;
  #forwarded = 0;
  /** Where a held (strip-mode) entry starts: nothing from there on is handed on until it is rewritten. */
  #holdFrom: number | undefined;
  /** Ranges replaced by rewritten bytes (strip mode): [start, end) of the input, and what goes instead. */
  readonly #replaced: { start: number; end: number; bytes: Buffer }[] = [];
  readonly #seen = new Set<string>();
  readonly #names: string[] = [];
  /** Digests of the manifests an OCI index.json lists: what a containerd store calls the loaded image. */
  readonly manifestDigests: string[] = [];

  constructor(policy: NamePolicy) {
    this.#policy = policy;
    this.#walker = new TarWalker((entry) => this.#entry(entry), { strict: true });
  }

  /** Tags the archive named and, in strip mode, that were taken out. */
  get names(): string[] {
    return [...this.#names];
  }

  /** Takes the next bytes of the image tar (kept, not copied); returns what may go to the engine now. */
  push(chunk: Buffer): Buffer[] {
    this.#queue.push({ offset: this.#pushed, bytes: chunk });
    try {
      this.#walker.push(chunk, []);
    } catch (error) {
      throw error instanceof VmError
        ? error
        : invalid(`its tar stream is damaged: ${(error as Error).message}`);
    } finally {
      this.#pushed += chunk.length;
    }
    const limit = Math.min(
      this.#holdFrom ?? Infinity,
      this.#walker.pendingEntryStart ?? Infinity,
      this.#walker.endOffset ?? Infinity,
      this.#pushed,
    );
    return this.#release(limit);
  }

  /** The image tar ended: checks that it ended properly and returns the rest. Throws if it must not load. */
  finish(): Buffer[] {
    try {
      this.#walker.finish();
    } catch (error) {
      throw invalid(`it ends in the middle of an entry: ${(error as Error).message}`);
    }
    if (!this.#walker.ended) throw invalid("it has no end-of-archive block");
    if (this.#policy === "refuse" && this.#names.length > 0) throw namesRefused(this.#names);
    return this.#release(this.#pushed);
  }

  #entry(entry: TarEntry): EntryHandler | undefined {
    const path = normalize(entry.name);
    if (this.#seen.has(path)) throw invalid(`it holds '${path}' twice`);
    this.#seen.add(path);
    if (entry.type === "directory") return undefined;
    if (entry.type === "symlink") {
      const target = posix.normalize(posix.join(posix.dirname(path), entry.linkname));
      if (!LEGACY_LAYER.test(path) || !LEGACY_LAYER.test(target))
        throw invalid(`'${path}' is a symlink to '${entry.linkname}', which docker save never writes`);
      return undefined;
    }
    if (entry.type !== "file")
      throw invalid(
        `'${path}' is a ${entry.type === "link" ? "hard link" : "special entry"}; images hold files`,
      );
    const named = NAME_FILES.has(path);
    if (!named && entry.size > MAX_SNIFFED) return undefined;
    if (named && entry.size > MAX_NAME_FILE)
      throw invalid(`its ${path} is ${entry.size} bytes, far more than any image's`);
    const hold = named && this.#policy === "strip";
    if (hold) this.#holdFrom = entry.start;
    const chunks: Buffer[] = [];
    return {
      data: (chunk) => void chunks.push(Buffer.from(chunk)),
      end: () => {
        const data = Buffer.concat(chunks);
        const found = this.#inspect(path, named, data);
        if (!hold) return;
        const end = entry.dataStart + entry.size + padding(entry.size).length;
        const rewritten = found ? this.#rewrite(path, data) : undefined;
        if (rewritten !== undefined) this.#replaced.push({ start: entry.start, end, bytes: rewritten });
        this.#holdFrom = undefined;
      },
    };
  }

  /** Records the names a small file carries (and an index's manifest digests); true if it carries any. */
  #inspect(path: string, named: boolean, data: Buffer): boolean {
    const first = data.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
    if (first !== 0x7b && first !== 0x5b) {
      if (named) throw invalid(`its ${path} is not JSON`);
      return false;
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString("utf8"));
    } catch {
      if (named) throw invalid(`its ${path} is not JSON`);
      return false;
    }
    if (path === "index.json") {
      for (const m of manifestsOf(json))
        if (typeof m.digest === "string") this.manifestDigests.push(m.digest);
    }
    const names = namesIn(json, path === "repositories");
    for (const name of names) this.#names.push(name);
    return names.length > 0;
  }

  /** The entry without its names, as a whole tar entry (header, data, padding), or empty to drop it. */
  #rewrite(path: string, data: Buffer): Buffer {
    if (path === "repositories") return Buffer.alloc(0);
    const json = JSON.parse(data.toString("utf8")) as unknown;
    if (Array.isArray(json)) {
      for (const item of json)
        if (item && typeof item === "object") (item as Record<string, unknown>).RepoTags = null;
    } else {
      for (const m of manifestsOf(json)) {
        if (!m.annotations || typeof m.annotations !== "object") continue;
        const annotations = m.annotations as Record<string, unknown>;
        for (const key of NAME_ANNOTATIONS) delete annotations[key];
      }
    }
    const body = Buffer.from(JSON.stringify(json));
    return Buffer.concat([encodeHeader({ name: path, size: body.length }), body, padding(body.length)]);
  }

  /** Hands on queued input below `limit`, with rewritten entries in place of the ranges they replace. */
  #release(limit: number): Buffer[] {
    const out: Buffer[] = [];
    while (this.#queue.length > 0 && this.#forwarded < limit) {
      const head = this.#queue[0]!;
      const headEnd = head.offset + head.bytes.length;
      const replaced = this.#replaced.find(
        (r) => r.end > this.#forwarded && r.start < Math.min(headEnd, limit),
      );
      let upTo = Math.min(headEnd, limit);
      if (replaced && replaced.start > this.#forwarded) upTo = replaced.start;
      if (replaced && replaced.start <= this.#forwarded) {
        // Inside a replaced range: send the rewrite once (at its start), skip the original bytes.
        if (replaced.bytes.length > 0) {
          out.push(replaced.bytes);
          replaced.bytes = Buffer.alloc(0);
        }
        upTo = Math.min(replaced.end, headEnd, limit);
      } else {
        out.push(head.bytes.subarray(this.#forwarded - head.offset, upTo - head.offset));
      }
      this.#forwarded = upTo;
      if (this.#forwarded >= headEnd) this.#queue.shift();
      if (replaced && this.#forwarded >= replaced.end)
        this.#replaced.splice(this.#replaced.indexOf(replaced), 1);
    }
    return out;
  }
}

/** The image tar as the engine may see it: `source` through an ImageGuard. Errors end the stream. */
export function guardedImage(source: AsyncIterable<Buffer>, guard: ImageGuard): Readable {
  return Readable.from(
    (async function* () {
      for await (const chunk of source) yield* guard.push(chunk);
      yield* guard.finish();
    })(),
    { objectMode: false, highWaterMark: BLOCK * 2048 },
  );
}

function normalize(name: string): string {
  const path = posix
    .normalize(name)
    .replace(/^(\.\/)+/, "")
    .replace(/\/+$/, "");
  if (path.startsWith("/") || path === ".." || path.startsWith("../"))
    throw invalid(`'${name}' points outside the archive`);
  return path;
}

function manifestsOf(json: unknown): Record<string, unknown>[] {
  const manifests = (json as { manifests?: unknown } | null)?.manifests;
  return Array.isArray(manifests)
    ? manifests.filter((m): m is Record<string, unknown> => typeof m === "object" && m !== null)
    : [];
}

/**
 * The image names a docker save document carries: RepoTags in a manifest.json, the image-name annotations
 * of an OCI index, or (`repositories`) every repo:tag of the legacy file. Any JSON is read this way, so a
 * name file saved under another path, or reached through a link, cannot slip by.
 */
function namesIn(json: unknown, repositories: boolean): string[] {
  const names: string[] = [];
  if (Array.isArray(json)) {
    for (const item of json) {
      const tags = (item as { RepoTags?: unknown } | null)?.RepoTags;
      if (Array.isArray(tags)) for (const tag of tags) names.push(String(tag));
    }
  }
  for (const m of manifestsOf(json)) {
    const annotations = m.annotations as Record<string, unknown> | undefined;
    for (const key of NAME_ANNOTATIONS) {
      const value = annotations?.[key];
      if (value !== undefined) names.push(typeof value === "string" ? value : JSON.stringify(value));
    }
  }
  if (
    json &&
    typeof json === "object" &&
    !Array.isArray(json) &&
    (repositories || looksLikeRepositories(json))
  ) {
    for (const [repo, tags] of Object.entries(json as Record<string, unknown>)) {
      if (tags && typeof tags === "object") for (const tag of Object.keys(tags)) names.push(`${repo}:${tag}`);
    }
  }
  return names;
}

/** `{"repo": {"tag": "<64 hex>"}}`, the legacy repositories file's shape, which no image config has. */
function looksLikeRepositories(json: object): boolean {
  const values: unknown[] = Object.values(json);
  return (
    values.length > 0 &&
    values.every((tags) => {
      if (tags === null || typeof tags !== "object" || Array.isArray(tags)) return false;
      const ids: unknown[] = Object.values(tags);
      return (
        ids.length > 0 && ids.every((id) => typeof id === "string" && /^(sha256:)?[0-9a-f]{64}$/.test(id))
      );
    })
  );
}

function invalid(why: string): VmError {
  return new VmError("IMAGE_INVALID", `images/base.tar cannot be loaded safely: ${why}`, {
    hint: "Do not import this file; get the snapshot from its maker again (nothing was imported)",
  });
}

function namesRefused(names: string[]): VmError {
  const shown = [...new Set(names)].slice(0, 5).join(", ");
  return new VmError(
    "IMAGE_NAMES_REFUSED",
    `images/base.tar names image tags (${shown}${names.length > 5 ? ", ..." : ""}): loading it would point those tags on this engine at the file's image. A file vm exports names none`,
    {
      hint: "Do not import this file: whoever made it may be trying to replace images you use; get the snapshot from its maker again (nothing was imported)",
    },
  );
}
