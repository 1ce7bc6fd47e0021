/**
 * Looks for likely secrets in an image as its `docker save` stream goes by on its way into a snapshot, so the
 * engine is read once. Nothing waits for manifest.json (the OCI layout puts it after the layers): any entry that
 * is a tar, once decompressed if need be, is a layer; its headers are parsed and only candidate files are read.
 */
import { Writable } from "node:stream";
import { createGunzip, createZstdDecompress } from "node:zlib";
import { extract, type Extract } from "tar-stream";
import { detectCompression } from "../archive/codec.ts";
import { VmError } from "../errors.ts";

export interface SecretFinding {
  /** Where the file is in the image, e.g. `root/.ssh/id_rsa`. */
  path: string;
  kind: string;
  /** The save archive entry the layer came in, e.g. `<id>/layer.tar` or `blobs/sha256/<hex>`. */
  layer: string;
}

const BLOCK = 512;
// zlib's default 16 KiB output chunks cost a thread pool round trip each: a third of the speed of 64 KiB ones.
const INFLATED_CHUNK = 64 * 1024;
const PRIVATE_KEY = "private key";
const CLOUD = "cloud credentials";
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
const AWS_ACCESS_KEY = /AKIA[0-9A-Z]{16}/;
const ENV_SECRET =
  /^[ \t]*(?:export[ \t]+)?[\w.-]*(?:token|secret|passw(?:or)?d|api_?key|access_key|private_key|credential)[\w.-]*[ \t]*=[ \t]*(?:"[^"\n]+"|'[^'\n]+'|[^\s"'#])/im;
const ENV_TEMPLATES = new Set(["example", "sample", "template"]);

interface Rule {
  kind: string;
  /** Decides on the content (latin1) of a file no larger than maxFileBytes. */
  found: (text: string, size: number) => boolean;
  /** The rule applies only to a path that ends like this, e.g. `/.aws/credentials`. */
  suffix?: string;
}

const always = (): boolean => true;
const nonEmpty = (_text: string, size: number): boolean => size > 0;
const contains =
  (...needles: string[]) =>
  (text: string): boolean =>
    needles.some((needle) => text.includes(needle));

const privateKey: Rule = { kind: PRIVATE_KEY, found: always };
const pem: Rule = { kind: PRIVATE_KEY, found: (text) => PEM_PRIVATE_KEY.test(text) };
const envFile: Rule = { kind: "token in .env file", found: (text) => ENV_SECRET.test(text) };
const history: Rule = { kind: "shell history", found: nonEmpty };
const netrc: Rule = { kind: "netrc credentials", found: contains("password") };
const at = (suffix: string, kind: string, found: Rule["found"] = always): Rule => ({ kind, found, suffix });
const each = (names: string[], rule: Rule): [string, Rule][] => names.map((name) => [name, rule]);

const BY_NAME = new Map<string, Rule>([
  ...each(["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"], privateKey),
  ...each([".bash_history", ".zsh_history", ".ash_history", ".sh_history"], history),
  ...each([".python_history", ".psql_history", ".mysql_history"], history),
  ...each([".netrc", "_netrc"], netrc),
  [".npmrc", { kind: "npm credentials", found: contains("_auth", "_password") }],
  [".pypirc", { kind: "PyPI credentials", found: contains("password") }],
  [".git-credentials", { kind: "git credentials", found: nonEmpty }],
  ["application_default_credentials.json", { kind: CLOUD, found: always }],
  ["credentials", at("/.aws/credentials", CLOUD)],
  ["credentials.db", at("/.config/gcloud/credentials.db", CLOUD)],
  ["accessTokens.json", at("/.azure/accessTokens.json", CLOUD)],
  ["config.json", at("/.docker/config.json", "docker credentials", contains('"auth"'))],
  ["config", at("/.kube/config", "kubernetes credentials", contains("token:", "client-key-data"))],
]);
const BY_EXTENSION = new Map(Object.entries({ pem, key: pem, p12: privateKey, pfx: privateKey }));

/** The rule for a file that may hold a secret, or undefined for the (vast) rest. Runs once per file. */
function ruleFor(path: string): Rule | undefined {
  const name = path.slice(path.lastIndexOf("/") + 1);
  if (name.startsWith(".wh.")) return undefined; // a layer's deletion marker, not a file
  const rule = BY_NAME.get(name);
  if (rule !== undefined) {
    return rule.suffix === undefined || `/${path}`.endsWith(rule.suffix) ? rule : undefined;
  }
  if (name === ".env" || (name.startsWith(".env.") && !ENV_TEMPLATES.has(name.slice(5)))) return envFile;
  const dot = name.lastIndexOf(".");
  return dot < 0 ? undefined : BY_EXTENSION.get(name.slice(dot + 1).toLowerCase());
}

/** What node streams (zlib) and streamx ones (tar-stream) have in common. */
interface Sink {
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  end(chunk?: undefined): unknown;
  destroy(): void;
  on(event: "drain" | "close", listener: () => void): unknown;
  off(event: "drain" | "close", listener: () => void): unknown;
}

interface LayerContext {
  readonly maxFileBytes: number;
  record(path: string, kind: string): void;
  /** The layer cannot be parsed; counted once per layer however many parts of it fail. */
  fail(): void;
}

export class SecretScanner {
  /** A Writable to pipe (a tee of) the `docker save` stream into. */
  readonly input: Writable;
  /** Layers that looked like (compressed) tars but could not be read to the end. */
  skippedLayers = 0;
  readonly #maxFileBytes: number;
  readonly #findings = new Map<string, SecretFinding>();
  readonly #scan: Promise<SecretFinding[]>;

  constructor(options: { maxFileBytes?: number } = {}) {
    this.#maxFileBytes = options.maxFileBytes ?? 256 * 1024;
    const save = extract();
    this.#scan = this.#entries(save).catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      throw new VmError("SECRET_SCAN_FAILED", `The image could not be scanned for secrets: ${reason}`, {
        cause: error,
      });
    });
    // Also keeps a failed scan whose result nobody asks for (the export failed too) from crashing the process.
    const settled = this.#scan.then(
      () => {},
      () => {},
    );
    this.input = new Writable({
      // Once the scan has failed, the stream is drained rather than errored: the export it tees must go on.
      write: (chunk: Buffer, _encoding, callback) => offer(save, chunk, () => callback()),
      final: (callback) => {
        save.end(undefined);
        void settled.then(() => callback());
      },
      destroy: (error, callback) => {
        save.destroy(error ?? undefined);
        callback(error);
      },
    });
  }

  /** The findings, sorted by path, once `input` has finished. */
  result(): Promise<SecretFinding[]> {
    return this.#scan;
  }

  async #entries(save: Extract): Promise<SecretFinding[]> {
    for await (const entry of save) {
      const { name, type } = entry.header;
      if (type !== "file") {
        entry.resume();
        continue;
      }
      let failed = false;
      const layer = new LayerSink(
        {
          maxFileBytes: this.#maxFileBytes,
          record: (path, kind) => {
            const key = `${path}\u0000${kind}`;
            if (!this.#findings.has(key)) this.#findings.set(key, { path, kind, layer: name });
          },
          fail: () => {
            if (!failed) this.skippedLayers += 1;
            failed = true;
          },
        },
        true,
      );
      await new Promise((resolve) => {
        layer.on("close", resolve);
        entry.pipe(layer);
      });
    }
    const order = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
    return [...this.#findings.values()].sort((a, b) => order(a.path, b.path) || order(a.kind, b.kind));
  }
}

/**
 * Takes one save archive entry, sniffs its first block, and sends it into a decompressor (whose output goes to
 * another LayerSink) or a tar parser, or drops it. It never errors, since that would tear down the parser of
 * the whole save stream: a layer that cannot be read is counted and the rest of it drained.
 */
class LayerSink extends Writable {
  readonly #context: LayerContext;
  readonly #mayDecompress: boolean;
  #head: Buffer[] | null = [];
  #headBytes = 0;
  #sink: Sink | null = null;
  /** Settles once the sink has dealt with everything written to it (or failed). Never rejects. */
  #done: Promise<unknown> = Promise.resolve();

  constructor(context: LayerContext, mayDecompress: boolean) {
    super();
    this.#context = context;
    this.#mayDecompress = mayDecompress;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    if (this.#head === null) {
      if (this.#sink === null) callback();
      else offer(this.#sink, chunk, callback);
      return;
    }
    this.#head.push(chunk);
    this.#headBytes += chunk.length;
    if (this.#headBytes < BLOCK) callback();
    else this.#open(callback);
  }

  override _final(callback: () => void): void {
    const finish = (): void => {
      if (this.#sink !== null && !this.#sink.destroyed) this.#sink.end();
      void this.#done.then(() => callback());
    };
    if (this.#head === null) finish();
    else this.#open(finish);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#sink?.destroy();
    callback(error);
  }

  #open(then: () => void): void {
    const head = Buffer.concat(this.#head ?? []);
    this.#head = null;
    const compression = this.#mayDecompress ? detectCompression(head) : "none";
    if (compression !== "none") {
      const options = { chunkSize: INFLATED_CHUNK };
      const decompressor = compression === "gzip" ? createGunzip(options) : createZstdDecompress(options);
      const tar = new LayerSink(this.#context, false);
      this.#done = new Promise((resolve) => {
        tar.on("finish", resolve);
        decompressor.on("error", () => {
          this.#context.fail();
          tar.destroy();
          resolve(undefined);
        });
      });
      decompressor.pipe(tar);
      this.#sink = decompressor;
    } else if (head.length >= 263 && head.toString("latin1", 257, 262) === "ustar") {
      const tar = extract();
      this.#done = scanFiles(tar, this.#context).catch(() => {
        this.#context.fail();
        tar.destroy();
      });
      this.#sink = tar;
    }
    if (this.#sink === null) then();
    else offer(this.#sink, head, then);
  }
}

async function scanFiles(tar: Extract, context: LayerContext): Promise<void> {
  for await (const file of tar) {
    const { name, size, type } = file.header;
    const path = name.replace(/^(?:\.?\/)+/, "");
    const rule = type === "file" || type === "contiguous-file" ? ruleFor(path) : undefined;
    if (rule === undefined || size > context.maxFileBytes) {
      file.resume();
      // Too big to read: only rules that go by the path alone count (a 280 KB certifi/cacert.pem is a
      // certificate bundle, not a private key; a big history is still a history).
      if (rule !== undefined && (rule.found === always || rule.found === nonEmpty))
        context.record(path, rule.kind);
      continue;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of file) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("latin1");
    if (rule.found(text, size)) context.record(path, rule.kind);
    if (PEM_PRIVATE_KEY.test(text)) context.record(path, PRIVATE_KEY);
    if (AWS_ACCESS_KEY.test(text)) context.record(path, CLOUD);
  }
}

/** Writes with back-pressure; `then` runs once the sink can take more, or has died and never will. */
function offer(sink: Sink, chunk: Buffer, then: () => void): void {
  if (sink.destroyed || sink.write(chunk)) return then();
  const go = (): void => {
    sink.off("drain", go);
    sink.off("close", go);
    then();
  };
  sink.on("drain", go);
  sink.on("close", go);
}
