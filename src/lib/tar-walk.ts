/**
 * A synchronous tar reader for scanning: it follows headers (ustar, GNU long names, PAX paths and sizes)
 * and hands each entry's data to a handler as views of the pushed chunks, never copying or keeping them.
 * That lets it read chunks that are only valid during the call (the export's borrowed save stream), and
 * it is much cheaper than a stream per entry. It checks each header's checksum; it does not extract.
 */

const BLOCK = 512;
const KINDS: Record<string, string> = {
  "3": "character-device",
  "4": "block-device",
  "6": "fifo",
  "7": "contiguous-file",
};
const MAX_META = 1024 * 1024;

export interface TarEntry {
  /** The path, prefix and long-name extensions applied. */
  name: string;
  size: number;
  /** "file", "directory", "symlink", "link" or "other" (devices, FIFOs, GNU sparse files, ...). */
  type: "file" | "directory" | "symlink" | "link" | "other";
  /** What the entry is, in words for messages: its type, or "character-device", "fifo", "sparse file", ... */
  kind: string;
  /** A link's target. */
  linkname: string;
  /** Stream offset of the entry's first header block (a PAX or GNU long-name header when it has one). */
  start: number;
  /** Stream offset of its data: past its header; the data and padding take `size` rounded up to blocks. */
  dataStart: number;
}

export interface EntryHandler {
  /** A view of the entry's next bytes, valid only during the call. May return a promise to ask for a pause. */
  data(chunk: Buffer): void | Promise<void>;
  end(): void;
}

export class TarWalker {
  readonly #onEntry: (entry: TarEntry) => EntryHandler | undefined;
  readonly #header = Buffer.alloc(BLOCK);
  #filled = 0;
  #state: "header" | "data" | "padding" | "end" = "header";
  #left = 0;
  #padding = 0;
  #handler: EntryHandler | undefined;
  /** A PAX or GNU long-name entry being collected, applied to the next header. */
  #meta: { kind: "pax" | "gnu"; chunks: Buffer[]; size: number } | undefined;
  #override: { name?: string; size?: number; sparse?: boolean } = {};
  /** Stream offset where the entry being read began (its first header block), while in its headers. */
  #entryStart: number | undefined;
  #endOffset: number | undefined;
  readonly #strict: boolean;
  /** Stream offset of the next byte pushed. */
  #offset = 0;

  /**
   * `strict`: also throw at the first non-zero byte where a tar writer leaves zeros (the padding after an
   * entry's data, everything after the end-of-archive block), bytes no header checksum or data digest covers.
   */
  constructor(onEntry: (entry: TarEntry) => EntryHandler | undefined, options: { strict?: boolean } = {}) {
    this.#onEntry = onEntry;
    this.#strict = options.strict ?? false;
  }

  /** Whether the end-of-archive block has been read. */
  get ended(): boolean {
    return this.#state === "end";
  }

  /** Stream offset of the end-of-archive block, once read. */
  get endOffset(): number | undefined {
    return this.#endOffset;
  }

  /**
   * Stream offset of the first header block of an entry whose headers are still being read (so what it is
   * is not known yet), else undefined.
   */
  get pendingEntryStart(): number | undefined {
    return this.#entryStart;
  }

  /**
   * Reads the next bytes. Promises returned by handlers are collected into `waits`. Throws on a header
   * that is not a tar header.
   */
  push(chunk: Buffer, waits: Promise<void>[]): void {
    try {
      this.#push(chunk, waits);
    } finally {
      this.#offset += chunk.length;
    }
  }

  #push(chunk: Buffer, waits: Promise<void>[]): void {
    let at = 0;
    while (at < chunk.length) {
      const available = chunk.length - at;
      if (this.#state === "end") {
        if (this.#strict) this.#requireZeros(chunk, at, chunk.length, "after the end-of-archive block");
        return;
      }
      if (this.#state === "header") {
        if (this.#filled === 0 && this.#entryStart === undefined) this.#entryStart = this.#offset + at;
        const take = Math.min(available, BLOCK - this.#filled);
        chunk.copy(this.#header, this.#filled, at, at + take);
        this.#filled += take;
        at += take;
        if (this.#filled === BLOCK) {
          this.#filled = 0;
          this.#startEntry(this.#offset + at);
        }
      } else if (this.#state === "data") {
        const take = Math.min(available, this.#left);
        const view = chunk.subarray(at, at + take);
        if (this.#meta) {
          this.#meta.size += take;
          if (this.#meta.size <= MAX_META) this.#meta.chunks.push(Buffer.from(view));
        } else if (this.#handler) {
          const wait = this.#handler.data(view);
          if (wait) waits.push(wait);
        }
        this.#left -= take;
        at += take;
        if (this.#left === 0) this.#endData();
      } else {
        const take = Math.min(available, this.#left);
        if (this.#strict) this.#requireZeros(chunk, at, at + take, "in the padding after an entry's data");
        this.#left -= take;
        at += take;
        if (this.#left === 0) this.#state = "header";
      }
    }
  }

  /** The input ended: throws if it ended inside an entry or a header (a tar cut short). */
  finish(): void {
    if (this.#state === "end") return;
    if (this.#state === "header" && this.#filled === 0) return;
    throw new Error("The tar ends in the middle of an entry");
  }

  #requireZeros(chunk: Buffer, from: number, to: number, where: string): void {
    for (let i = from; i < to; i++)
      if (chunk[i] !== 0)
        throw new Error(`non-zero byte at offset ${this.#offset + i} of the archive, ${where}`);
  }

  /** `dataStart`: the stream offset just past this header block. */
  #startEntry(dataStart: number): void {
    const h = this.#header;
    if (isZero(h)) {
      this.#state = "end";
      this.#endOffset = dataStart - BLOCK;
      return;
    }
    if (!checksumMatches(h)) throw new Error("Not a tar header (checksum mismatch)");
    const flag = String.fromCharCode(h[156]!);
    let size = parseNumber(h, 124, 12);
    let name = field(h, 0, 100);
    // As Go's archive/tar (the engine's reader) reads it: the prefix field exists in POSIX ustar headers
    // ("ustar\0" "00"), 131 bytes long in star's variant; GNU headers ("ustar  ") keep other fields there.
    if (h.toString("latin1", 257, 265) === "ustar\u000000") {
      const star = h.toString("latin1", 508, 512) === "tar\u0000";
      const prefix = field(h, 345, star ? 131 : 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    if (flag === "x" || flag === "g" || flag === "L") {
      this.#meta = { kind: flag === "L" ? "gnu" : "pax", chunks: [], size: 0 };
      if (flag === "g") this.#meta.size = MAX_META + 1; // global headers: read past, not applied
      this.#begin(size);
      return;
    }
    if (this.#override.name !== undefined) name = this.#override.name;
    if (this.#override.size !== undefined) size = this.#override.size;
    const sparse = this.#override.sparse === true;
    this.#override = {};
    const type = sparse
      ? "other"
      : flag === "0" || flag === "\0" || flag === "7"
        ? "file"
        : flag === "5"
          ? "directory"
          : flag === "2"
            ? "symlink"
            : flag === "1"
              ? "link"
              : "other";
    const start = this.#entryStart ?? dataStart - BLOCK;
    this.#entryStart = undefined;
    // Go's reader (the engine's) takes a contiguous file for a regular one; `kind` still names it.
    const kind = sparse
      ? "sparse file"
      : (KINDS[flag] ?? (type === "other" ? `entry of type '${flag}'` : type));
    const linkname = field(h, 157, 100);
    this.#handler = this.#onEntry({ name, size, type, kind, linkname, start, dataStart });
    this.#begin(size);
  }

  #begin(size: number): void {
    this.#left = size;
    this.#padding = (BLOCK - (size % BLOCK)) % BLOCK;
    this.#state = "data";
    if (size === 0) this.#endData();
  }

  #endData(): void {
    const meta = this.#meta;
    this.#meta = undefined;
    if (meta && meta.size <= MAX_META) {
      const text = Buffer.concat(meta.chunks).toString("utf8");
      if (meta.kind === "gnu") this.#override.name = text.replace(/\0+$/, "");
      else Object.assign(this.#override, parsePax(text));
    } else if (!meta) {
      this.#handler?.end();
      this.#handler = undefined;
    }
    this.#left = this.#padding;
    this.#state = this.#padding === 0 ? "header" : "padding";
  }
}

function isZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

function checksumMatches(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return parseNumber(h, 148, 8) === sum;
}

function field(h: Buffer, offset: number, length: number): string {
  const end = h.indexOf(0, offset);
  return h.toString("utf8", offset, end < 0 || end > offset + length ? offset + length : end);
}

/** An octal number field, or GNU's base-256 form when the high bit of its first byte is set. */
function parseNumber(h: Buffer, offset: number, length: number): number {
  if ((h[offset]! & 0x80) !== 0) {
    let value = 0;
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + h[i]!;
    return value;
  }
  const text = h
    .toString("latin1", offset, offset + length)
    .replace(/\0.*$/s, "")
    .trim();
  return text === "" ? 0 : Number.parseInt(text, 8);
}

/**
 * PAX records ("<length> <key>=<value>\n"): the path and size, which override the header's, and whether
 * they describe a GNU sparse file (whose data is not laid out as a plain file's).
 */
function parsePax(text: string): { name?: string; size?: number; sparse?: boolean } {
  const out: { name?: string; size?: number; sparse?: boolean } = {};
  for (const record of text.split("\n")) {
    const match = /^\d+ ([^=]+)=(.*)$/s.exec(record);
    if (!match) continue;
    if (match[1] === "path") out.name = match[2]!;
    else if (match[1] === "size" && /^\d+$/.test(match[2]!)) out.size = Number(match[2]);
    else if (match[1]!.startsWith("GNU.sparse.")) out.sparse = true;
  }
  return out;
}
