import type { Agent, ClientRequest, IncomingMessage } from "node:http";
import type { Duplex, Readable } from "node:stream";
import { VmError, systemErrorCode } from "../../errors.ts";
import { requestFailed, Unreachable } from "../errors.ts";
import type { BorrowedBody, Endpoint } from "../engine.ts";
import { borrowedGet } from "./borrowed-get.ts";

// Not `import http from "node:http"`: an ESM import of a builtin reads every export, and node:http's lazy
// WebSocket export then loads all of undici (6 ms of every command's start-up).
const http = process.getBuiltinModule("node:http");

/** The newest Engine API version this client is written against; older engines are talked to in theirs. */
const MAX_API_VERSION = "1.45";
const MIN_API_VERSION = "1.41";

export interface RequestOptions {
  query?: Record<string, string | number | boolean | string[] | undefined>;
  body?: unknown;
  /** A stream body is sent as-is (chunked); anything else is sent as JSON. */
  stream?: Readable;
  headers?: Record<string, string>;
  /** Statuses the caller handles itself instead of getting an error. */
  accept?: number[];
}

/** A non-2xx answer from the engine, with the engine's own message. Callers branch on `status`. */
/**
 * A thin HTTP client for the Docker Engine API over a unix socket or TCP. It negotiates the API version
 * once (from /_ping), returns responses as streams, and turns connection failures into one clear error.
 */
export class DockerHttp {
  readonly endpoint: Endpoint;
  private readonly agent: Agent;
  private apiVersion: Promise<string> | undefined;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    const options = { keepAlive: true, maxSockets: 16 };
    // node:https (and TLS with it) loads only for a TLS endpoint: it costs start-up time otherwise.
    this.agent = endpoint.tls
      ? new (https().Agent)({ ...options, ...endpoint.tls })
      : new http.Agent(options);
  }

  close(): void {
    this.agent.destroy();
  }

  version(): Promise<string> {
    this.apiVersion ??= this.negotiate();
    return this.apiVersion;
  }

  private async negotiate(): Promise<string> {
    const res = await this.raw("GET", "/_ping", {});
    res.resume();
    if (res.statusCode !== 200) {
      throw new Unreachable(
        "ENGINE_UNAVAILABLE",
        `The Docker engine at ${this.endpoint.url} answered /_ping with ${res.statusCode}`,
        {
          hint: "Check the engine with `vm doctor`",
        },
      );
    }
    const server = res.headers["api-version"];
    const version = typeof server === "string" ? server : MIN_API_VERSION;
    return compareVersions(version, MAX_API_VERSION) < 0 ? version : MAX_API_VERSION;
  }

  /** Sends a request and resolves with the response once headers arrive; >= 400 rejects with the engine-neutral error for the status. */
  async request(
    method: string,
    path: string,
    what: string,
    options: RequestOptions = {},
  ): Promise<IncomingMessage> {
    const version = await this.version();
    const res = await this.raw(method, `/v${version}${path}`, options);
    const status = res.statusCode ?? 0;
    if (status >= 400 && !options.accept?.includes(status)) {
      throw requestFailed(status, await errorMessage(res), what);
    }
    return res;
  }

  async json<T>(method: string, path: string, what: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, what, options);
    const text = await readText(res);
    if (res.statusCode === 204 || text === "") return undefined as T;
    return JSON.parse(text) as T;
  }

  /** Sends a request and discards the body; resolves with the status. */
  async call(method: string, path: string, what: string, options: RequestOptions = {}): Promise<number> {
    const res = await this.request(method, path, what, options);
    await readText(res);
    return res.statusCode ?? 0;
  }

  /**
   * GETs a large body as chunks borrowed from one reused read buffer: each chunk is valid only until the
   * next is asked for (see borrowed-get.ts). Over TLS the chunks come from Node's HTTP client instead.
   */
  async getBorrowed(path: string, what: string): Promise<BorrowedBody> {
    if (this.endpoint.tls) {
      const res = await this.request("GET", path, what);
      return { destroy: () => res.destroy(), [Symbol.asyncIterator]: () => res[Symbol.asyncIterator]() };
    }
    const version = await this.version();
    const { socketPath, host, port } = this.endpoint;
    const target = socketPath ? { socketPath } : { host: host ?? "localhost", port: port ?? 2375 };
    let response;
    try {
      response = await borrowedGet(target, `/v${version}${path}`, (error) => this.connectionError(error));
    } catch (error) {
      throw this.connectionError(error as Error);
    }
    if (response.status >= 400) {
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
      const text = Buffer.concat(chunks).toString("utf8");
      throw requestFailed(response.status, engineMessage(text, response.status), what);
    }
    return response.body;
  }

  /**
   * Upgrades the connection to a raw bidirectional stream (exec and attach). The engine sends 101 and then
   * speaks its stream protocol on the socket; older engines may answer 200 and do the same.
   */
  async hijack(path: string, body: unknown, what: string): Promise<Duplex> {
    const version = await this.version();
    return new Promise((resolve, reject) => {
      const req = this.send("POST", `/v${version}${path}`, {
        headers: { Connection: "Upgrade", Upgrade: "tcp", "Content-Type": "application/json" },
      });
      req.on("upgrade", (_res, socket, head) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.on("response", (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 400) {
          errorMessage(res).then((m) => reject(requestFailed(status, m, what)), reject);
          return;
        }
        resolve(res.socket);
      });
      req.on("error", (error) => reject(this.connectionError(error)));
      req.end(JSON.stringify(body));
    });
  }

  private raw(method: string, path: string, options: RequestOptions): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = this.send(method, withQuery(path, options.query), options);
      req.on("response", resolve);
      req.on("error", (error) => reject(this.connectionError(error)));
      if (options.stream) {
        options.stream.on("error", (error) => req.destroy(error));
        options.stream.pipe(req);
      } else if (options.body !== undefined) {
        req.end(JSON.stringify(options.body));
      } else {
        req.end();
      }
    });
  }

  private send(method: string, path: string, options: RequestOptions): ClientRequest {
    const headers: Record<string, string> = { Host: "docker", ...options.headers };
    if (options.body !== undefined && !options.stream) headers["Content-Type"] ??= "application/json";
    const { socketPath, host, port, tls } = this.endpoint;
    const target = socketPath ? { socketPath } : { host, port };
    const request = tls ? https().request : http.request;
    return request({ ...target, method, path, headers, agent: this.agent });
  }

  /**
   * The error to report for a failure of the connection to the engine: a VmError saying so for errors
   * only Node's HTTP client raises ("aborted", "socket hang up": the engine went away mid-request or
   * mid-response), anything else unchanged.
   */
  explain(error: unknown): unknown {
    if (!(error instanceof Error) || error instanceof VmError) return error;
    const code = systemErrorCode(error);
    if (code === "ECONNRESET" && (error.message === "aborted" || error.message === "socket hang up"))
      return this.connectionError(error);
    return error;
  }

  private connectionError(error: Error): Error {
    if (error instanceof VmError) return error;
    const code = systemErrorCode(error);
    if (
      code === undefined ||
      !["ENOENT", "ECONNREFUSED", "EACCES", "EHOSTUNREACH", "ETIMEDOUT", "ECONNRESET", "EPIPE"].includes(code)
    ) {
      return error;
    }
    if (code === "ECONNRESET" || code === "EPIPE") {
      return new Unreachable(
        "ENGINE_CONNECTION_LOST",
        `The connection to the Docker engine at ${this.endpoint.url} was lost (${code})`,
        {
          hint: "The engine may have restarted; check it with `vm doctor` and run the command again",
          cause: error,
        },
      );
    }
    const hint =
      code === "EACCES"
        ? `Permission denied on ${this.endpoint.socketPath ?? this.endpoint.url}: add yourself to the docker group (sudo usermod -aG docker $USER) or run as root`
        : "Start the Docker engine (e.g. `sudo systemctl start docker`), or set DOCKER_HOST to an engine that runs; `vm doctor` checks the setup";
    return new Unreachable(
      "ENGINE_UNAVAILABLE",
      `Cannot reach the Docker engine at ${this.endpoint.url} (${this.endpoint.source}): ${code}`,
      {
        hint,
        cause: error,
      },
    );
  }
}

const https = () => process.getBuiltinModule("node:https");

function withQuery(path: string, query: RequestOptions["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (Array.isArray(value)) for (const item of value) params.append(key, item);
    else if (value !== undefined) params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export const labelFilter = (labels: Record<string, string>) =>
  JSON.stringify({ label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) });

export async function readText(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function errorMessage(res: IncomingMessage): Promise<string> {
  return engineMessage(await readText(res), res.statusCode ?? 0);
}

/** The engine's own words from an error body: its JSON `message`, else the raw text. */
function engineMessage(body: string, status: number): string {
  const text = body.trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === "string") return parsed.message;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text || `HTTP ${status}`;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
