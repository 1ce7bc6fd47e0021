/**
 * Looks for likely secrets in an image as its `docker save` stream goes by on its way into a snapshot, so the
 * engine is read once. Nothing waits for manifest.json (the OCI layout puts it after the layers): any entry that
 * is a tar, once decompressed if need be, is a layer; its headers are parsed and only candidate files are read.
 * Everything is parsed synchronously as the bytes pass (TarWalker), so the scanner never keeps the chunks it is
 * given: it copies only headers and candidate files, and compressed layers on their way into zlib.
 */
import { type Transform, Writable } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { detectCompression } from "../lib/codec.ts";
import { drainedOrClosed } from "../lib/backpressure.ts";
import { VmError } from "../errors.ts";
import { configEntryFindings } from "./config-entries.ts";
import { kindsFound, provenByPath, ruleFor, searchForTokens } from "./rules.ts";
import { findTokens } from "./tokens.ts";
import { TarWalker, type EntryHandler, type TarEntry } from "../lib/tar-walk.ts";

export interface SecretFinding {
  /** Where the file is in the image, e.g. `root/.ssh/id_rsa`; or, for the image config, `config: Env
   * GITHUB_TOKEN` or `history: step 4`. */
  path: string;
  kind: string;
  /** The save archive entry the layer (or the config) came in, e.g. `<id>/layer.tar` or `blobs/sha256/<hex>`. */
  layer: string;
  /** What the secret starts and ends with (`ghp_…6789`), when its format is known; never the secret. */
  preview?: string;
  /** A file in a layer, or the image's config (environment, labels, history). */
  source?: "file" | "config";
}

const BLOCK = 512;
// zlib's default 16 KiB output chunks cost a thread pool round trip each: a third of the speed of 64 KiB ones.
const INFLATED_CHUNK = 64 * 1024;
/** An image config is a few KiB (history and all); past this, a JSON entry is something else. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
interface LayerContext {
  readonly maxFileBytes: number;
  record(path: string, kind: string, extra?: Pick<SecretFinding, "preview" | "source">): void;
  /** The layer cannot be parsed; counted once per layer however many parts of it fail. */
  fail(): void;
  /** Work that finishes after the bytes are in (a decompressing layer); result() waits for it. */
  later(done: Promise<void>): void;
}

export class SecretScanner {
  /** A Writable to write (a tee of) the `docker save` stream into. It copies what it keeps. */
  readonly input: Writable;
  /** Layers that looked like (compressed) tars but could not be read to the end. */
  skippedLayers = 0;
  readonly #maxFileBytes: number;
  readonly #findings = new Map<string, SecretFinding>();
  readonly #later: Promise<void>[] = [];
  readonly #scan: Promise<SecretFinding[]>;
  #settle!: { resolve: () => void; reject: (error: unknown) => void };

  constructor(options: { maxFileBytes?: number } = {}) {
    this.#maxFileBytes = options.maxFileBytes ?? 256 * 1024;
    const finished = new Promise<void>((resolve, reject) => (this.#settle = { resolve, reject }));
    this.#scan = finished
      .then(() => Promise.all(this.#later))
      .then(() => {
        const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
        return [...this.#findings.values()].sort((a, b) => order(a.path, b.path) || order(a.kind, b.kind));
      })
      .catch((error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error);
        throw new VmError("SECRET_SCAN_FAILED", `The image could not be scanned for secrets: ${reason}`, {
          cause: error,
        });
      });
    // Also keeps a failed scan whose result nobody asks for (the export failed too) from crashing the process.
    this.#scan.catch(() => {});
    this.input = new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        const wait = this.push(chunk);
        if (wait) void wait.then(() => callback());
        else callback();
      },
      final: (callback) => {
        this.end();
        callback();
      },
      destroy: (error, callback) => {
        this.#settle.reject(error ?? new Error("the image stream was cut short"));
        callback(error);
      },
    });
  }

  #broken: unknown;
  readonly #save = new TarWalker((entry) => (entry.type === "file" ? this.#layer(entry.name) : undefined));

  /**
   * Scans the next bytes of the save stream, which may be reused as soon as this returns: what the scan
   * keeps, it copies. A returned promise asks the caller to wait before pushing more (zlib is behind).
   * Once the stream cannot be parsed, the rest passes unread: the export it tees must go on.
   */
  push(chunk: Buffer): Promise<void> | undefined {
    if (this.#broken !== undefined) return undefined;
    const waits: Promise<void>[] = [];
    try {
      this.#save.push(chunk, waits);
    } catch (error) {
      this.#broken = error;
    }
    return waits.length === 0 ? undefined : Promise.all(waits).then(() => {});
  }

  /** The save stream has ended. */
  end(): void {
    try {
      if (this.#broken === undefined) this.#save.finish();
    } catch (error) {
      this.#broken = error;
    }
    if (this.#broken !== undefined) this.#settle.reject(this.#broken);
    else this.#settle.resolve();
  }

  /** The save stream failed: the scan has no result. */
  abort(error: Error): void {
    this.#settle.reject(error);
  }

  /** The findings, sorted by path, once `input` has finished. */
  result(): Promise<SecretFinding[]> {
    return this.#scan;
  }

  #layer(name: string): EntryHandler {
    let failed = false;
    return new LayerScan(
      {
        maxFileBytes: this.#maxFileBytes,
        record: (path, kind, extra = {}) => {
          const key = `${path}\u0000${kind}\u0000${extra.preview ?? ""}`;
          if (!this.#findings.has(key)) this.#findings.set(key, { path, kind, layer: name, ...extra });
        },
        fail: () => {
          if (!failed) this.skippedLayers += 1;
          failed = true;
        },
        later: (done) => this.#later.push(done),
      },
      true,
    );
  }
}

/**
 * One save archive entry: its first block decides whether it is a compressed layer (decompressed into
 * another LayerScan), a tar layer (scanned) or something else (passed over). A layer that cannot be read
 * is counted and the rest of it passed over; it never fails the scan of the whole save stream.
 */
class LayerScan implements EntryHandler {
  readonly #context: LayerContext;
  readonly #mayDecompress: boolean;
  #head: Buffer | null = Buffer.alloc(0);
  #tar: TarWalker | null = null;
  #inflate: Transform | null = null;
  #json: { chunks: Buffer[]; bytes: number } | null = null;
  #skip = false;

  constructor(context: LayerContext, mayDecompress: boolean) {
    this.#context = context;
    this.#mayDecompress = mayDecompress;
  }

  data(chunk: Buffer): void | Promise<void> {
    if (this.#skip) return;
    if (this.#head !== null) {
      const need = BLOCK - this.#head.length;
      this.#head = Buffer.concat([this.#head, chunk.subarray(0, need)]);
      if (this.#head.length < BLOCK) return;
      const head = this.#head;
      this.#head = null;
      this.#open(head);
      const first = this.#feed(head);
      const rest = chunk.subarray(need);
      const second = rest.length > 0 ? this.#feed(rest) : undefined;
      return second ?? first;
    }
    return this.#feed(chunk);
  }

  end(): void {
    if (this.#head !== null) {
      const head = this.#head;
      this.#head = null;
      this.#open(head);
      void this.#feed(head);
    }
    if (this.#skip) return;
    if (this.#inflate) this.#inflate.end();
    else if (this.#json) this.#config(Buffer.concat(this.#json.chunks));
    else if (this.#tar) {
      try {
        this.#tar.finish();
      } catch {
        this.#context.fail();
      }
    }
  }

  #open(head: Buffer): void {
    const compression = this.#mayDecompress ? detectCompression(head) : "none";
    if (compression !== "none") {
      const options = { chunkSize: INFLATED_CHUNK };
      const inflate = compression === "gzip" ? createGunzip(options) : createZstdDecompress(options);
      const inner = new LayerScan(this.#context, false);
      inflate.on("data", (out: Buffer) => void inner.data(out));
      this.#context.later(
        new Promise<void>((resolve) => {
          inflate.on("end", () => {
            inner.end();
            resolve();
          });
          inflate.on("error", () => {
            this.#context.fail();
            this.#skip = true;
            resolve();
          });
        }),
      );
      this.#inflate = inflate;
    } else if (this.#mayDecompress && head[0] === 0x7b) {
      this.#json = { chunks: [], bytes: 0 }; // "{": a JSON document of the save, perhaps the image config
    } else if (head.length >= 263 && head.toString("latin1", 257, 262) === "ustar") {
      this.#tar = new TarWalker((entry) => this.#file(entry));
    } else {
      this.#skip = true;
    }
  }

  #feed(chunk: Buffer): void | Promise<void> {
    if (this.#skip) return;
    if (this.#json) {
      this.#json.bytes += chunk.length;
      if (this.#json.bytes > MAX_CONFIG_BYTES) this.#skip = true;
      else this.#json.chunks.push(Buffer.from(chunk));
      return;
    }
    if (this.#inflate) {
      if (this.#inflate.destroyed) return;
      // zlib keeps the chunk until it has read it; the caller's chunk is only lent.
      if (this.#inflate.write(Buffer.from(chunk))) return;
      return drainedOrClosed(this.#inflate).then(
        () => {},
        () => {},
      );
    }
    try {
      this.#tar?.push(chunk, []);
    } catch {
      this.#context.fail();
      this.#skip = true;
    }
  }

  /** A JSON entry of the save: when it is the image config, its environment, labels and history. */
  #config(bytes: Buffer): void {
    for (const finding of configEntryFindings(bytes))
      this.#context.record(finding.path, finding.kind, { preview: finding.preview, source: "config" });
  }

  #file(entry: TarEntry): EntryHandler | undefined {
    const path = entry.name.replace(/^(?:\.?\/)+/, "");
    if (entry.type !== "file" || entry.size === 0) return undefined;
    const rule = ruleFor(path);
    if (rule === undefined && !searchForTokens(path)) return undefined;
    const context = this.#context;
    const file = { source: "file" } as const;
    if (entry.size > context.maxFileBytes) {
      if (rule && provenByPath(rule)) context.record(path, rule.kind, file);
      return undefined;
    }
    const chunks: Buffer[] = [];
    return {
      data: (chunk) => void chunks.push(Buffer.from(chunk)),
      end: () => {
        const bytes = Buffer.concat(chunks);
        const text = bytes.toString("latin1");
        // A NUL early on: a binary file, whose chance byte runs would only look like tokens.
        const tokens = rule === undefined && bytes.subarray(0, 1024).includes(0) ? [] : findTokens(text);
        for (const token of tokens) context.record(path, token.kind, { ...file, preview: token.preview });
        // The path's rule, unless a token of the same kind already says it with a preview.
        if (rule)
          for (const { kind, preview } of kindsFound(rule, text, entry.size))
            if (!tokens.some((token) => token.kind === kind))
              context.record(path, kind, { ...file, ...(preview ? { preview } : {}) });
      },
    };
  }
}
