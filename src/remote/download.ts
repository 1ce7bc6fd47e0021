import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { VmError, systemErrorCode } from "../errors.ts";
import { changed, DOWNLOAD_BUFFER, formatAt, resumableBytes, type Reopened } from "./resume.ts";

// As in engine/transport/http.ts: getBuiltinModule, not an ESM import that reads every export.
const http = process.getBuiltinModule("node:http");
const https = process.getBuiltinModule("node:https");

export interface DownloadOptions {
  url: URL;
  /** An Authorization header value, sent to the URL's own origin only, never logged. */
  authorization?: string | undefined;
  /** How many times a lost connection is resumed (default 5), with a backoff doubling from `backoffMs`. */
  retries?: number;
  backoffMs?: number;
  /** Told once of what changes how the download goes (no Range support, a resume). */
  onNote?: (text: string) => void;
  /** Continue an earlier run's download: from this byte, if the file still has this validator. */
  from?: { offset: number; etag: string } | undefined;
}

export interface Download {
  stream: Readable;
  /** From Content-Length, when the server says it. */
  size: number | undefined;
  etag: string | undefined;
  /** The server answers ranged requests: a lost connection continues from the byte it reached. */
  ranges: boolean;
  /** The byte the stream starts at: `from.offset` when the server continued there, else 0. */
  startedAt: number;
}

const MAX_REDIRECTS = 5;

/**
 * A file from an http(s) URL as one stream of its bytes, whatever happens to the connection: when it is
 * lost, the download continues from the byte it reached (`Range` with `If-Range`, so a changed object is
 * never spliced onto the old one's start), a bounded number of times with backoff. A server without Range
 * support is read again from the start and the bytes already passed are skipped; an object that changed
 * meanwhile (another ETag) fails. What reads the stream sees one continuous file, so the hashes it keeps
 * go on as if nothing happened. TLS with the system's CAs plus NODE_EXTRA_CA_CERTS (Node's defaults).
 */
export async function openDownload(options: DownloadOptions): Promise<Download> {
  const from = options.from;
  const first = await get(
    options,
    options.url,
    from ? { Range: `bytes=${from.offset}-`, "If-Range": from.etag } : {},
  );
  let startedAt = 0;
  let size = numberHeader(first.res.headers["content-length"]);
  const continued = from
    ? /^bytes (\d+)-\d+\/(\d+)$/.exec(stringHeader(first.res.headers["content-range"]) ?? "")
    : null;
  if (first.res.statusCode === 206 && from && continued && Number(continued[1]) === from.offset) {
    startedAt = from.offset;
    size = Number(continued[2]);
  } else if (first.res.statusCode !== 200) throw await failure(first.res, first.url, options);
  const etag = stringHeader(first.res.headers.etag);
  const lastModified = stringHeader(first.res.headers["last-modified"]);
  const ranges = startedAt > 0 || first.res.headers["accept-ranges"] === "bytes";
  // If-Range needs a strong validator: a strong ETag, else the date.
  const validator = etag && !etag.startsWith("W/") ? etag : lastModified;
  const shown = displayUrl(options.url);

  let noRangeSaid = false;
  const reopen = async (from: number): Promise<Reopened> => {
    const headers: Record<string, string> = {};
    if (ranges) {
      headers.Range = `bytes=${from}-`;
      if (validator) headers["If-Range"] = validator;
    }
    const next = await get(options, options.url, headers);
    const res = next.res;
    const status = res.statusCode ?? 0;
    const now = stringHeader(res.headers.etag);
    if (etag && now && now !== etag) {
      res.destroy();
      throw changed(shown, etag, now);
    }
    if (status === 206) {
      const start = /^bytes (\d+)-/.exec(stringHeader(res.headers["content-range"]) ?? "")?.[1];
      if (Number(start) !== from) {
        res.destroy();
        throw new VmError(
          "REMOTE_REQUEST_FAILED",
          `${shown} answered a resume at byte ${from} with another range (${res.headers["content-range"] ?? "none"})`,
        );
      }
      return { body: res, start: from };
    }
    if (status === 200) {
      if (!noRangeSaid)
        options.onNote?.(
          `The connection to ${options.url.host} was lost at ${formatAt(from, size)}, and the server cannot resume (no Range support): reading it again from the start\n`,
        );
      noRangeSaid = true;
      return { body: res, start: 0 };
    }
    throw await failure(res, next.url, options);
  };
  const bytes = resumableBytes(first.res, {
    shown,
    host: options.url.host,
    size,
    startAt: startedAt,
    retries: options.retries ?? 5,
    backoffMs: options.backoffMs ?? 500,
    reopen,
    onNote: options.onNote,
  });

  const stream = Readable.from(bytes, { objectMode: false, highWaterMark: DOWNLOAD_BUFFER });
  if (!ranges)
    options.onNote?.(
      `${shown} does not support ranged requests: a lost connection means reading it again from the start\n`,
    );
  return { stream, size, etag, ranges, startedAt };
}

/** One GET, following redirects; Authorization goes to the URL's own origin only. */
async function get(
  options: DownloadOptions,
  start: URL,
  extra: Record<string, string>,
): Promise<{ res: IncomingMessage; url: URL }> {
  let url = start;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { "User-Agent": "vm", ...extra };
    if (options.authorization && url.origin === options.url.origin) {
      if (url.protocol === "http:" && !loopback(url.hostname))
        throw new VmError(
          "USAGE",
          `vm sends an Authorization header only over HTTPS (or to this machine), not to ${url.origin}`,
          {
            hint: "Use the https:// URL",
          },
        );
      headers.Authorization = options.authorization;
    }
    const res = await request(url, headers);
    const location = res.headers.location;
    if ((res.statusCode ?? 0) >= 300 && (res.statusCode ?? 0) < 400 && location) {
      res.resume();
      if (hop >= MAX_REDIRECTS)
        throw new VmError(
          "REMOTE_REQUEST_FAILED",
          `${displayUrl(options.url)} redirected more than ${MAX_REDIRECTS} times`,
        );
      url = new URL(location, url);
      continue;
    }
    return { res, url };
  }
}

function request(url: URL, headers: Record<string, string>): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === "https:" ? https : http;
    const req = client.get(url, { headers }, resolve);
    req.on("error", (error) => reject(connectionError(url, error)));
  });
}

/** What a non-200 first answer means, in words. */
async function failure(res: IncomingMessage, url: URL, options: DownloadOptions): Promise<VmError> {
  res.resume();
  const status = res.statusCode ?? 0;
  const shown = displayUrl(url);
  if (status === 404 || status === 410)
    return new VmError("REMOTE_NOT_FOUND", `${shown} does not exist (HTTP ${status})`, {
      hint: "Check the URL of the snapshot file",
    });
  if (status === 401 || status === 403)
    return new VmError(
      "REMOTE_DENIED",
      `${shown} refused vm ${options.authorization ? "with the Authorization given" : "without credentials"} (HTTP ${status})`,
      {
        hint: options.authorization
          ? "Check the token in --authorization or VM_HTTP_AUTHORIZATION"
          : "Pass the server's credentials: --authorization 'Bearer TOKEN' (or set VM_HTTP_AUTHORIZATION)",
      },
    );
  if (status === 416)
    return new VmError("REMOTE_REQUEST_FAILED", `${shown} refused the range vm asked for (HTTP 416)`);
  return new VmError("REMOTE_REQUEST_FAILED", `${shown} answered HTTP ${status}`, {
    hint: "Check the URL, and that the server serves the file with a plain GET",
  });
}

export function connectionError(url: URL, error: Error): VmError {
  if (error instanceof VmError) return error;
  const code = systemErrorCode(error) ?? "";
  if (
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME/.test(code) ||
    /certificate/i.test(error.message)
  )
    return new VmError(
      "REMOTE_TLS_FAILED",
      `The TLS certificate of ${url.host} is not trusted: ${error.message}`,
      {
        hint: "Point NODE_EXTRA_CA_CERTS at the CA certificate that signed it (a PEM file), and run again",
        cause: error,
      },
    );
  return new VmError("REMOTE_UNREACHABLE", `Cannot reach ${url.host} (${code || error.message})`, {
    hint: "Check the URL and the network; the server must answer a GET of the file",
    cause: error,
  });
}

/** The URL as it may be shown: without credentials in it or its query (which may hold a signature). */
export function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function loopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function numberHeader(value: string | string[] | undefined): number | undefined {
  const n = Number(Array.isArray(value) ? value[0] : value);
  return Number.isSafeInteger(n) && n >= 0 && value !== undefined ? n : undefined;
}

function stringHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
