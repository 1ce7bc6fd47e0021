import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { VmError, isVmError, systemErrorCode } from "../errors.ts";

// As in engine/transport/http.ts: getBuiltinModule, not an ESM import that reads every export.
const http = process.getBuiltinModule("node:http");
const https = process.getBuiltinModule("node:https");
const tls = process.getBuiltinModule("node:tls");

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A Buffer is sent with its length; a stream with `length` as Content-Length. */
  body?: Buffer | Readable;
  length?: number;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  url: URL;
  body: IncomingMessage;
}

/** Where docker engines look for a registry's CA: `/etc/docker/certs.d/<host:port>/*.crt`. */
export const CERTS_DIR = "/etc/docker/certs.d";

/** A registry answered with a status the caller did not expect. */
export class RegistryHttpError extends Error {
  readonly status: number;
  readonly url: URL;
  readonly headers: IncomingHttpHeaders;
  /** The registry's own error codes and messages (distribution spec's `errors` array), when it sent them. */
  readonly errors: { code: string; message: string }[];
  constructor(
    status: number,
    url: URL,
    headers: IncomingHttpHeaders,
    errors: { code: string; message: string }[],
  ) {
    const said = errors.map((e) => `${e.code}: ${e.message}`).join("; ");
    super(`HTTP ${status} from ${url.origin}${url.pathname}${said ? ` (${said})` : ""}`);
    this.status = status;
    this.url = url;
    this.headers = headers;
    this.errors = errors;
  }
}

/**
 * HTTPS with the system's CAs, NODE_EXTRA_CA_CERTS, and the engine's convention for a registry's own CA
 * (`/etc/docker/certs.d/<host>/*.crt`, also read by docker engines); certificates are always verified.
 */
export class RegistryTransport {
  private readonly certsDir: string;
  private readonly cas = new Map<string, string[]>();
  private readonly agents = new Map<string, import("node:http").Agent>();

  constructor(certsDir: string = CERTS_DIR) {
    this.certsDir = certsDir;
  }

  /**
   * Sends one request and follows redirects (up to 5). `Authorization` is sent only to the origin it was
   * meant for: a redirect to another origin (blob storage, a CDN) goes without it.
   */
  async send(request: HttpRequest): Promise<HttpResponse> {
    let url = request.url;
    let headers = { ...request.headers };
    for (let hop = 0; ; hop++) {
      const res = await this.once({ ...request, url, headers });
      const location = res.headers.location;
      if (res.status < 300 || res.status >= 400 || res.status === 304 || !location) return res;
      res.body.resume();
      if (hop >= 5)
        throw new VmError("REGISTRY_REQUEST_FAILED", `Too many redirects from ${request.url.origin}`);
      if (request.body && typeof (request.body as Readable).pipe === "function")
        throw new VmError(
          "REGISTRY_REQUEST_FAILED",
          `${url.origin} redirected an upload, which vm cannot resend`,
        );
      const next = new URL(location, url);
      if (next.origin !== url.origin) {
        const { Authorization: _dropped, authorization: _dropped2, ...rest } = headers;
        headers = rest;
      }
      url = next;
    }
  }

  private once(request: HttpRequest): Promise<HttpResponse> {
    const secure = request.url.protocol === "https:";
    const body = request.body;
    const headers: Record<string, string> = { "User-Agent": "vm", ...request.headers };
    if (Buffer.isBuffer(body)) headers["Content-Length"] = String(body.length);
    else if (body && request.length !== undefined) headers["Content-Length"] = String(request.length);
    else if (!body && request.method !== "GET" && request.method !== "HEAD") headers["Content-Length"] = "0";
    return new Promise<HttpResponse>((resolve, reject) => {
      const options = {
        method: request.method,
        headers,
        agent: this.agent(request.url),
      };
      const req = (secure ? https : http).request(request.url, options, (res) =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, url: request.url, body: res }),
      );
      // A body that fails (the file being uploaded is damaged) is that failure, not the connection's.
      let bodyFailed: Error | undefined;
      req.on("error", (error) => reject(bodyFailed ?? connectionError(request.url, error)));
      if (!body) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on("error", (error) => {
          bodyFailed = error;
          req.destroy(error);
        });
        body.pipe(req);
      }
    });
  }

  private agent(url: URL): import("node:http").Agent {
    const key = `${url.protocol}//${url.host}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent =
        url.protocol === "https:"
          ? new https.Agent({ keepAlive: true, maxSockets: 8, ca: this.trusted(url.host) })
          : new http.Agent({ keepAlive: true, maxSockets: 8 });
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** The CAs trusted for a host: Node's defaults (bundled, NODE_EXTRA_CA_CERTS) plus certs.d's for it. */
  private trusted(host: string): string[] {
    let cas = this.cas.get(host);
    if (!cas) {
      cas = [...tls.getCACertificates("default"), ...readCertsDir(join(this.certsDir, host))];
      this.cas.set(host, cas);
    }
    return cas;
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

function readCertsDir(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.endsWith(".crt"))
    .sort()
    .map((name) => readFileSync(join(dir, name), "utf8"));
}

/** Errors below HTTP: what went wrong reaching the registry, in words, with what to check. */
export function connectionError(url: URL, error: Error): VmError {
  const code = systemErrorCode(error) ?? "";
  if (
    /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|HOSTNAME|ALTNAME/.test(code) ||
    /certificate/i.test(error.message)
  ) {
    return new VmError(
      "REGISTRY_TLS_FAILED",
      `The TLS certificate of ${url.host} is not trusted: ${error.message}`,
      {
        hint: `Put the registry's CA certificate in ${join(CERTS_DIR, url.host, "ca.crt")} (docker engines read it there too), or point NODE_EXTRA_CA_CERTS at it`,
        cause: error,
      },
    );
  }
  return new VmError(
    "REGISTRY_UNREACHABLE",
    `Cannot reach the registry ${url.host} (${code || error.message})`,
    {
      hint: `Check the registry's address (${url.host}) and that it is running: its /v2/ must answer`,
      cause: error,
    },
  );
}

/** Whether an error means the server does not speak TLS (a plain-HTTP registry asked over HTTPS). */
export function notTls(error: unknown): boolean {
  const cause = error instanceof VmError ? (error.cause as Error | undefined) : (error as Error | undefined);
  const code = systemErrorCode(cause) ?? "";
  return (
    code === "EPROTO" ||
    code === "ERR_SSL_WRONG_VERSION_NUMBER" ||
    /wrong version number|packet length too long/i.test(cause?.message ?? "")
  );
}

/**
 * Reads a whole response body, refusing more than `max` bytes. A connection lost mid-body is a VmError
 * too (Node raises a plain "aborted" Error there).
 */
export async function readBody(res: HttpResponse, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) {
        res.body.destroy();
        throw new VmError(
          "REGISTRY_REQUEST_FAILED",
          `${res.url.origin}${res.url.pathname} answered more than ${max} bytes`,
        );
      }
      chunks.push(chunk);
    }
  } catch (error) {
    throw isVmError(error) ? error : connectionError(res.url, error as Error);
  }
  return Buffer.concat(chunks);
}

/** The distribution spec's error body, read (bounded) from a failed response. */
export async function registryErrors(res: HttpResponse): Promise<{ code: string; message: string }[]> {
  try {
    const text = (await readBody(res, 64 * 1024)).toString("utf8");
    const parsed = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    return (parsed.errors ?? []).map((e) => ({
      code: typeof e.code === "string" ? e.code : "",
      message: typeof e.message === "string" ? e.message : "",
    }));
  } catch {
    return [];
  }
}
