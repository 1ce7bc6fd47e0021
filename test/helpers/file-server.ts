import { createHash } from "node:crypto";
import { createReadStream, openSync, readSync, closeSync, statSync } from "node:fs";
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { testCa } from "./test-ca.ts";

/**
 * A static file server on 127.0.0.1 (a port of its own) for tests of downloads from `http(s)://` URLs:
 * GET and HEAD of files the test gives it, as Buffers or as paths of files on disk, with the headers a
 * download that resumes relies on, and a record of every request.
 *
 * What it answers, pinned by test/remote-infra.test.ts:
 * - 200 with Content-Length, ETag (strong by default: a hash of the content, so it changes exactly when
 *   the content does), Last-Modified (the time of put(), each put of a path strictly later than the one
 *   before, so a date validator changes too), Content-Type application/octet-stream, and with `ranges`
 *   on (the default) `Accept-Ranges: bytes`.
 * - With `ranges` on, a GET with one `Range: bytes=N-`, `bytes=N-M` or `bytes=-S` gets 206 with
 *   Content-Range; one that starts at or past the end gets 416 with a Content-Range that names only the size. A
 *   Range the server does not take (several ranges, another unit, bad syntax) is ignored: 200, whole body.
 *   `If-Range` as RFC 9110 13.1.5 says: the Range applies only when the If-Range entity-tag matches the
 *   current one by strong comparison (a weak tag never does), or its date equals Last-Modified exactly;
 *   otherwise 200 with the whole current body. HEAD never gets 206 (Range is defined for GET only).
 * - With `ranges` off: always 200 with the whole body, no Accept-Ranges header, Range and If-Range
 *   ignored.
 * - `If-Match` (RFC 9110 13.1.1, strong comparison, `*` matches any file): 412 when it does not match.
 * - `requireAuth: "Bearer xyz"`: a request whose Authorization is not exactly that value gets 401 with
 *   WWW-Authenticate, before anything else (a redirect too).
 * - An unknown path: 404; another method: 405 with `Allow: GET, HEAD`.
 *
 * put() while a download runs replaces the file for the requests that come after: a response already
 * under way goes on sending the content it started with (as a server that renamed a new file over the
 * old one would), so a client that resumes sees a new ETag. Give put() a Buffer or another file path
 * for the new content: a file on disk rewritten in place would change under a response that reads it.
 */

/** What a path serves: the bytes themselves, or the path of a file on disk (read at each request). */
export type FileContent = Buffer | string;

export interface FileServerOptions {
  /** HTTPS with the test CA's server certificate (test/helpers/test-ca.ts). Default false. */
  tls?: boolean;
  /** Answer Range requests (206). Default true. */
  ranges?: boolean;
  /** The exact Authorization value every request must carry, e.g. "Bearer xyz"; others get 401. */
  requireAuth?: string;
  /** The files at start: URL path ("/dir/file.tar.gz", the leading slash optional) -> content. */
  files?: Record<string, FileContent> | Map<string, FileContent>;
  /** "strong" (default), "weak" (W/"..."; never matches an If-Range) or "none" (no ETag header). */
  etag?: "strong" | "weak" | "none";
  /** Send Last-Modified (default true). */
  lastModified?: boolean;
  /** Slow every response body down to about this many bytes a second (default: as fast as it goes). */
  bytesPerSecond?: number;
  /** The host name the server's URLs use: "127.0.0.1" (default) or "localhost" (both in the cert). */
  hostname?: "127.0.0.1" | "localhost";
}

/** One request the server got, recorded when it arrives and updated while its answer is sent. */
export interface FileRequestRecord {
  method: string;
  /** The decoded URL path, without the query. */
  path: string;
  /** The request headers; an Authorization value is replaced by "[redacted]". */
  headers: IncomingHttpHeaders;
  range: string | undefined;
  ifRange: string | undefined;
  ifMatch: string | undefined;
  /** An Authorization header was sent (whatever its value). */
  authorization: boolean;
  /** It was the one `requireAuth` asks for (true when the server asks for none). */
  authorized: boolean;
  status: number;
  /** The ETag the answer carried. */
  etag: string | undefined;
  /** Content-Range of a 206 (or a 416). */
  contentRange: string | undefined;
  /** Body bytes handed to the connection so far (a client that hung up may not have read them all). */
  bytesSent: number;
  /** The whole answer was sent. */
  complete: boolean;
  /** The connection closed before the whole answer was sent. */
  aborted: boolean;
}

export interface FileServer {
  /** The server's origin, without a trailing slash: http://127.0.0.1:PORT or https://127.0.0.1:PORT. */
  url: string;
  port: number;
  /** url + path (a leading slash is added when missing; the path is used as given, not encoded). */
  urlOf(path: string): string;
  /** Adds or replaces a file; returns the ETag it now has (strong form, whatever `etag` says). */
  put(path: string, content: FileContent): string;
  /** Removes a file: its path answers 404 from now on. */
  remove(path: string): void;
  /** The current strong ETag of a path, or undefined when nothing is there. */
  etagOf(path: string): string | undefined;
  /** Answers `path` with a redirect to `location` (absolute, or a path on this server). */
  redirect(path: string, location: string, status?: 301 | 302 | 303 | 307 | 308): void;
  /** Changes the speed of the responses that start from now on (undefined: as fast as it goes). */
  setBytesPerSecond(bytesPerSecond: number | undefined): void;
  /** Every request so far, oldest first (records of running responses keep changing). */
  readonly requests: readonly FileRequestRecord[];
  /** Body bytes handed to connections, all requests together. */
  readonly bytesSent: number;
  /** Forgets the requests recorded so far and resets bytesSent. */
  clearRecords(): void;
  /** Stops listening and closes every connection (a running response is cut). */
  close(): Promise<void>;
}

interface Entry {
  content: FileContent;
  size: number;
  /** The strong tag, quotes included. */
  etag: string;
  /** Whole seconds: HTTP dates have no finer resolution. */
  lastModified: Date;
}

function normalize(path: string): string {
  return path.startsWith("/") ? path : `/${path}`;
}

function hashContent(content: FileContent): { size: number; digest: string } {
  const hash = createHash("sha256");
  if (Buffer.isBuffer(content)) return { size: content.length, digest: hash.update(content).digest("hex") };
  const size = statSync(content).size;
  const fd = openSync(content, "r");
  try {
    const chunk = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return { size, digest: hash.digest("hex") };
}

/** Parses one `bytes=` range against `size`: the span, "unsatisfiable", or undefined to ignore it. */
export function parseByteRange(
  header: string,
  size: number,
): { start: number; end: number } | "unsatisfiable" | undefined {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Number(m[2]);
  if (end < start) return undefined; // invalid: ignored (RFC 9110 14.1.1)
  if (start >= size) return "unsatisfiable";
  return { start, end: Math.min(end, size - 1) };
}

/** RFC 9110 8.8.3.2 strong comparison: both tags strong and their opaque parts equal. */
function strongMatch(a: string, b: string): boolean {
  return !a.startsWith("W/") && !b.startsWith("W/") && a === b;
}

function listOfTags(header: string): string[] {
  return header.match(/(?:W\/)?"[^"]*"|\*/g) ?? [];
}

/** Starts the server on 127.0.0.1 (port 0: a free one). */
export async function startFileServer(options: FileServerOptions = {}): Promise<FileServer> {
  const ranges = options.ranges ?? true;
  const etagMode = options.etag ?? "strong";
  const sendLastModified = options.lastModified ?? true;
  let bytesPerSecond = options.bytesPerSecond;
  const files = new Map<string, Entry>();
  const redirects = new Map<string, { location: string; status: number }>();
  let requests: FileRequestRecord[] = [];
  let totalSent = 0;

  const put = (path: string, content: FileContent): string => {
    const key = normalize(path);
    const { size, digest } = hashContent(content);
    const etag = `"${digest.slice(0, 32)}"`;
    const previous = files.get(key);
    let seconds = Math.floor(Date.now() / 1000);
    if (previous) seconds = Math.max(seconds, previous.lastModified.getTime() / 1000 + 1);
    files.set(key, { content, size, etag, lastModified: new Date(seconds * 1000) });
    return etag;
  };
  const initial = options.files instanceof Map ? options.files : new Map(Object.entries(options.files ?? {}));
  for (const [path, content] of initial) put(path, content);

  const shownEtag = (entry: Entry): string | undefined =>
    etagMode === "none" ? undefined : etagMode === "weak" ? `W/${entry.etag}` : entry.etag;

  /** RFC 9110 13.1.5: does the Range apply? */
  const ifRangeHolds = (value: string, entry: Entry): boolean => {
    const v = value.trim();
    if (v.startsWith('"') || v.startsWith("W/")) {
      const current = shownEtag(entry);
      return current !== undefined && strongMatch(v, current);
    }
    if (!sendLastModified) return false;
    const date = Date.parse(v);
    return !Number.isNaN(date) && date === entry.lastModified.getTime();
  };

  async function sendBody(
    res: ServerResponse,
    record: FileRequestRecord,
    entry: Entry,
    start: number,
    end: number,
  ): Promise<void> {
    const source: Iterable<Buffer> | AsyncIterable<Buffer> = Buffer.isBuffer(entry.content)
      ? (function* (buf: Buffer) {
          for (let at = start; at <= end; at += 64 * 1024)
            yield buf.subarray(at, Math.min(end + 1, at + 64 * 1024));
        })(entry.content)
      : (createReadStream(entry.content, { start, end, highWaterMark: 64 * 1024 }) as Readable);
    const rate = bytesPerSecond;
    const closed = new Promise<void>((resolvePromise) => res.once("close", resolvePromise));
    try {
      for await (const whole of source) {
        for (let at = 0; at < whole.length;) {
          if (res.destroyed) return;
          const step = rate ? Math.max(1, Math.min(whole.length - at, Math.ceil(rate / 20))) : whole.length;
          const chunk = whole.subarray(at, at + step);
          at += step;
          const ok = res.write(chunk);
          record.bytesSent += chunk.length;
          totalSent += chunk.length;
          if (rate)
            await Promise.race([new Promise((r) => setTimeout(r, (chunk.length / rate) * 1000)), closed]);
          if (!ok && !res.destroyed) await Promise.race([new Promise((r) => res.once("drain", r)), closed]);
        }
      }
    } finally {
      if (!Buffer.isBuffer(entry.content)) (source as Readable).destroy();
    }
    if (!res.destroyed) res.end();
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://x");
    let path: string;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      path = url.pathname;
    }
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(", ") : v;
    };
    const headers = { ...req.headers };
    if (headers.authorization !== undefined) headers.authorization = "[redacted]";
    const record: FileRequestRecord = {
      method: req.method ?? "",
      path,
      headers,
      range: header("range"),
      ifRange: header("if-range"),
      ifMatch: header("if-match"),
      authorization: req.headers.authorization !== undefined,
      authorized: options.requireAuth === undefined || req.headers.authorization === options.requireAuth,
      status: 0,
      etag: undefined,
      contentRange: undefined,
      bytesSent: 0,
      complete: false,
      aborted: false,
    };
    requests.push(record);
    res.once("finish", () => (record.complete = true));
    res.once("close", () => (record.aborted = !record.complete));
    const answer = (status: number, extra: Record<string, string | number> = {}, body = "") => {
      record.status = status;
      res.writeHead(status, { "content-length": Buffer.byteLength(body), ...extra });
      res.end(req.method === "HEAD" ? undefined : body);
    };

    if (!record.authorized) {
      const scheme = /^\s*(\w+)/.exec(options.requireAuth ?? "")?.[1] ?? "Bearer";
      return answer(401, { "www-authenticate": `${scheme} realm="vm-test-file-server"` }, "unauthorized\n");
    }
    const redirect = redirects.get(path);
    if (redirect) return answer(redirect.status, { location: redirect.location });
    if (req.method !== "GET" && req.method !== "HEAD") return answer(405, { allow: "GET, HEAD" });
    const entry = files.get(path);
    if (!entry) return answer(404, {}, "not found\n");

    const etag = shownEtag(entry);
    record.etag = etag;
    const common: Record<string, string | number> = { "content-type": "application/octet-stream" };
    if (etag) common.etag = etag;
    if (sendLastModified) common["last-modified"] = entry.lastModified.toUTCString();
    if (ranges) common["accept-ranges"] = "bytes";

    if (record.ifMatch !== undefined) {
      const tags = listOfTags(record.ifMatch);
      if (!tags.some((t) => t === "*" || (etag !== undefined && strongMatch(t, etag))))
        return answer(412, common, "precondition failed\n");
    }

    let span = { start: 0, end: entry.size - 1 };
    let status = 200;
    if (ranges && req.method === "GET" && record.range !== undefined) {
      const applies = record.ifRange === undefined || ifRangeHolds(record.ifRange, entry);
      const parsed = applies ? parseByteRange(record.range, entry.size) : undefined;
      if (parsed === "unsatisfiable") {
        record.contentRange = `bytes */${entry.size}`;
        return answer(416, { ...common, "content-range": record.contentRange });
      }
      if (parsed) {
        span = parsed;
        status = 206;
        record.contentRange = `bytes ${span.start}-${span.end}/${entry.size}`;
        common["content-range"] = record.contentRange;
      }
    }
    record.status = status;
    res.writeHead(status, { ...common, "content-length": span.end - span.start + 1 });
    if (req.method === "HEAD" || entry.size === 0) {
      res.end();
      return;
    }
    await sendBody(res, record, entry, span.start, span.end);
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(error));
      } else res.destroy();
    });
  };
  const server = options.tls
    ? createHttpsServer({ key: testCa().keyPem, cert: testCa().certPem }, listener)
    : createHttpServer(listener);
  await new Promise<void>((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolvePromise());
  });
  const port = (server.address() as AddressInfo).port;
  const origin = `${options.tls ? "https" : "http"}://${options.hostname ?? "127.0.0.1"}:${port}`;
  let closing: Promise<void> | undefined;

  return {
    url: origin,
    port,
    urlOf: (path) => origin + normalize(path),
    put,
    remove: (path) => void files.delete(normalize(path)),
    etagOf: (path) => files.get(normalize(path))?.etag,
    redirect: (path, location, status = 302) => void redirects.set(normalize(path), { location, status }),
    setBytesPerSecond: (value) => void (bytesPerSecond = value),
    get requests() {
      return requests;
    },
    get bytesSent() {
      return totalSent;
    },
    clearRecords() {
      requests = [];
      totalSent = 0;
    },
    close() {
      closing ??= new Promise<void>((resolvePromise) => {
        server.close(() => resolvePromise());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
