import { BLOCK } from "./tar-header.ts";

/**
 * Follows a tar stream's framing as its bytes pass (headers, data, padding) and checks the bytes that
 * neither an entry's data nor a header's checksum covers: the padding after each entry's data and all
 * that follows the end-of-archive block must be zeros, as tar writers leave them. A reader that also
 * hashes each entry's data and checks each header's checksum then has every byte of the stream vouched for.
 */
export class TarFraming {
  #state: "header" | "data" | "padding" | "end" = "header";
  readonly #header = Buffer.alloc(BLOCK);
  #headerFilled = 0;
  /** Bytes left in the current data or padding. */
  #left = 0;
  #padding = 0;
  /** Stream offset of the next byte to be pushed. */
  #offset = 0;

  /** Feeds the next bytes; returns what is wrong at the first non-zero byte where zeros belong, if any. */
  push(chunk: Buffer): string | undefined {
    let at = 0;
    while (at < chunk.length) {
      const available = chunk.length - at;
      let take: number;
      if (this.#state === "data") {
        take = Math.min(available, this.#left);
        this.#left -= take;
        if (this.#left === 0) this.#startPadding();
      } else if (this.#state === "padding" || this.#state === "end") {
        take = this.#state === "end" ? available : Math.min(available, this.#left);
        const bad = firstNonZero(chunk, at, at + take);
        if (bad >= 0) {
          const where =
            this.#state === "end" ? "after the end-of-archive block" : "in the padding after an entry's data";
          return `non-zero byte at offset ${this.#offset + bad - at} of the archive, ${where}`;
        }
        if (this.#state === "padding") {
          this.#left -= take;
          if (this.#left === 0) this.#state = "header";
        }
      } else {
        take = Math.min(available, BLOCK - this.#headerFilled);
        chunk.copy(this.#header, this.#headerFilled, at, at + take);
        this.#headerFilled += take;
        if (this.#headerFilled === BLOCK) {
          this.#headerFilled = 0;
          if (firstNonZero(this.#header, 0, BLOCK) < 0) {
            this.#state = "end";
          } else {
            const size = entrySize(this.#header);
            this.#padding = (BLOCK - (size % BLOCK)) % BLOCK;
            this.#left = size;
            this.#state = "data";
            if (size === 0) this.#startPadding();
          }
        }
      }
      at += take;
      this.#offset += take;
    }
    return undefined;
  }

  #startPadding(): void {
    this.#left = this.#padding;
    this.#state = this.#padding === 0 ? "header" : "padding";
  }
}

/** Index of the first non-zero byte of buf[from, to), or -1. */
function firstNonZero(buf: Buffer, from: number, to: number): number {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return i;
  return -1;
}

/** The size field of a header: octal text, or GNU's base-256 form for sizes past 8 GiB. */
function entrySize(header: Buffer): number {
  if ((header[124]! & 0x80) !== 0) {
    let value = 0;
    for (let i = 125; i < 136; i++) value = value * 256 + header[i]!;
    return value;
  }
  const text = header.toString("ascii", 124, 136).replace(/\0.*$/s, "").trim();
  const value = Number.parseInt(text || "0", 8);
  return Number.isFinite(value) ? value : 0;
}
