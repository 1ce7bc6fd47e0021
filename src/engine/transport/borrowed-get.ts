import { connect, type Socket } from "node:net";
import type { BorrowedBody } from "../engine.ts";

/**
 * A response body whose chunks are views into one reused read buffer: each chunk is valid only until the
 * next one is asked for. It exists for `docker save`, the one stream that moves gigabytes through vm:
 * Node's HTTP client allocates a fresh 64 KiB buffer for every read, and that garbage alone held exports
 * at 200+ MB of memory. Reading into one preallocated buffer (`onread`) leaves nothing to collect.
 */

export interface BorrowedResponse {
  status: number;
  body: BorrowedBody;
}

const READ_BUFFER = 1024 * 1024;
const MAX_HEAD = 64 * 1024;

/** A plain HTTP/1.1 GET over a unix socket or TCP (no TLS), its body de-chunked as it is read. */
export function borrowedGet(
  target: { socketPath?: string; host?: string; port?: number },
  path: string,
  lost: (error: Error) => Error,
): Promise<BorrowedResponse> {
  const readBuffer = Buffer.allocUnsafe(READ_BUFFER);
  return new Promise((resolve, reject) => {
    const parser = new ResponseParser();
    /** Body slices of the current read, handed out one by one before the socket reads again. */
    const queue: Buffer[] = [];
    let waiter: { resolve: () => void; reject: (error: Error) => void } | undefined;
    let failure: Error | undefined;
    let ended = false;
    let headed = false;
    const wake = () => {
      const w = waiter;
      waiter = undefined;
      if (!w) return;
      if (failure) w.reject(failure);
      else w.resolve();
    };
    const fail = (error: Error) => {
      failure ??= error;
      if (!headed) reject(failure);
      wake();
    };
    const socket: Socket = connect({
      ...(target.socketPath
        ? { path: target.socketPath }
        : { host: target.host ?? "", port: target.port ?? 0 }),
      onread: {
        buffer: readBuffer,
        callback: (nread) => {
          try {
            parser.push(readBuffer.subarray(0, nread), queue);
          } catch (error) {
            fail(error as Error);
            socket.destroy();
            return false;
          }
          if (!headed && parser.status !== undefined) {
            headed = true;
            resolve({ status: parser.status, body });
          }
          if (parser.complete) ended = true;
          if (queue.length === 0 && !ended) return true;
          wake();
          // Hold further reads (which would overwrite the buffer) until the queue is taken.
          return false;
        },
      },
    });
    socket.on("error", (error) => fail(lost(error)));
    socket.on("end", () => {
      parser.finish();
      if (parser.complete) ended = true;
      else fail(lost(Object.assign(new Error("aborted"), { code: "ECONNRESET" })));
      wake();
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n`);

    const body: BorrowedBody = {
      destroy: () => {
        ended = true;
        socket.destroy();
      },
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            if (queue.length > 0) {
              yield queue.shift()!;
              continue;
            }
            if (failure) throw failure;
            if (ended) return;
            const more = new Promise<void>((res, rej) => (waiter = { resolve: res, reject: rej }));
            socket.resume();
            await more;
          }
        } finally {
          socket.destroy();
        }
      },
    };
  });
}

/**
 * Parses an HTTP/1.1 response as its bytes arrive: the status line and headers, then the body by
 * Content-Length, chunked transfer coding or to the end of the connection. Body bytes are appended to
 * `out` as views of the pushed buffer (never copied).
 */
export class ResponseParser {
  status: number | undefined;
  complete = false;
  #head = Buffer.alloc(0);
  #mode: "length" | "chunked" | "close" = "close";
  #left = 0;
  #chunkState: "size" | "data" | "data-crlf" | "trailer" = "size";
  #line = "";

  /** The connection ended: that completes a body delimited by the connection's end, and nothing else. */
  finish(): void {
    if (this.status !== undefined && this.#mode === "close") this.complete = true;
  }

  push(data: Buffer, out: Buffer[]): void {
    let at = 0;
    if (this.status === undefined) {
      const head = Buffer.concat([this.#head, data]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > MAX_HEAD) throw new Error("The engine's response headers are too long");
        this.#head = head;
        return;
      }
      this.#parseHead(head.toString("latin1", 0, end));
      at = end + 4 - this.#head.length;
      this.#head = Buffer.alloc(0);
      if (this.#mode === "length" && this.#left === 0) this.complete = true;
    }
    while (at < data.length && !this.complete) {
      if (this.#mode === "close") {
        out.push(data.subarray(at));
        return;
      }
      if (this.#mode === "length") {
        const take = Math.min(this.#left, data.length - at);
        out.push(data.subarray(at, at + take));
        this.#left -= take;
        at += take;
        if (this.#left === 0) this.complete = true;
        continue;
      }
      at = this.#chunked(data, at, out);
    }
  }

  #chunked(data: Buffer, at: number, out: Buffer[]): number {
    if (this.#chunkState === "data") {
      const take = Math.min(this.#left, data.length - at);
      if (take > 0) out.push(data.subarray(at, at + take));
      this.#left -= take;
      if (this.#left === 0) this.#chunkState = "data-crlf";
      return at + take;
    }
    // A line: the chunk size, the CRLF after a chunk's data, or a trailer line.
    const nl = data.indexOf(0x0a, at);
    const end = nl < 0 ? data.length : nl + 1;
    this.#line += data.toString("latin1", at, end);
    if (this.#line.length > 4096) throw new Error("The engine's chunked response is malformed");
    if (nl < 0) return end;
    const line = this.#line.replace(/\r?\n$/, "");
    this.#line = "";
    if (this.#chunkState === "data-crlf") {
      if (line !== "") throw new Error("The engine's chunked response is malformed");
      this.#chunkState = "size";
    } else if (this.#chunkState === "size") {
      const size = Number.parseInt(line.split(";")[0]!.trim(), 16);
      if (!Number.isInteger(size) || size < 0) throw new Error("The engine's chunked response is malformed");
      if (size === 0) this.#chunkState = "trailer";
      else {
        this.#left = size;
        this.#chunkState = "data";
      }
    } else if (line === "") {
      this.complete = true;
    }
    return end;
  }

  #parseHead(text: string): void {
    const [statusLine = "", ...lines] = text.split("\r\n");
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!match) throw new Error(`The engine sent an unreadable response: ${statusLine.slice(0, 80)}`);
    this.status = Number(match[1]);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    if (/\bchunked\b/i.test(headers.get("transfer-encoding") ?? "")) this.#mode = "chunked";
    else if (headers.has("content-length")) {
      this.#mode = "length";
      this.#left = Number(headers.get("content-length"));
    }
  }
}
