import type { Readable } from "node:stream";
import { VmError, isVmError } from "../errors.ts";
import { accessDenied, answerChallenge, type AccessRequest, type Action } from "./auth.ts";
import { resolveCredentials, type Credentials } from "./credentials.ts";
import { RegistryTransport, notTls, registryErrors, type HttpResponse } from "./http.ts";
import { apiOrigin, isLoopback } from "./reference.ts";

export interface ClientOptions {
  env: NodeJS.ProcessEnv;
  actions: Action[];
  transport?: RegistryTransport;
  /** Found once for the registry; tests and callers that already hold them pass them in. */
  credentials?: Credentials | undefined;
}

export interface SendOptions {
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  length?: number;
  /** Statuses handed back instead of raised (401 and 403 are always raised). */
  accept: number[];
  /** What is being done, for messages: "read the manifest of team/vibe:1". */
  what: string;
}

/**
 * An authenticated conversation with one repository of a registry, with the auth docker users already
 * have: credentials from docker's config (credential helpers, credsStore, auths), answered to whichever
 * challenge the registry sends (auth.ts). HTTPS always, except loopback registries, which may answer plain
 * HTTP (as docker engines allow). The API calls themselves are RegistryClient's (client.ts).
 */
export class RegistrySession {
  readonly registry: string;
  readonly repository: string;
  private readonly options: ClientOptions;
  private readonly transport: RegistryTransport;
  private readonly ownTransport: boolean;
  private origin: string | undefined;
  private authorization: string | undefined;
  private credentials: Credentials | undefined | null = null;
  private authenticated = false;

  constructor(registry: string, repository: string, options: ClientOptions) {
    this.registry = registry;
    this.repository = repository;
    this.options = options;
    this.ownTransport = !options.transport;
    this.transport = options.transport ?? new RegistryTransport();
    if ("credentials" in options) this.credentials = options.credentials;
  }

  close(): void {
    if (this.ownTransport) this.transport.close();
  }

  /** Where credentials came from, for messages ("anonymous" when none). */
  async credentialSource(): Promise<string> {
    const credentials = await this.creds();
    return credentials ? credentials.source : "anonymous";
  }

  private async creds(): Promise<Credentials | undefined> {
    if (this.credentials === null)
      this.credentials = await resolveCredentials(this.registry, this.options.env);
    return this.credentials;
  }

  /** The registry's origin: https, or for a loopback registry that does not speak TLS, http. */
  private async base(): Promise<string> {
    if (this.origin) return this.origin;
    const secure = apiOrigin(this.registry, "https");
    if (!isLoopback(this.registry)) return (this.origin = secure);
    try {
      const res = await this.transport.send({ method: "GET", url: new URL("/v2/", secure) });
      res.body.resume();
      return (this.origin = secure);
    } catch (error) {
      if (!notTls(error)) throw error;
      return (this.origin = apiOrigin(this.registry, "http"));
    }
  }

  /**
   * Answers the registry's challenge once, before the first real request (uploads cannot be resent): a
   * registry that wants credentials vm does not have fails here, with what to run.
   */
  async authenticate(): Promise<void> {
    if (this.authenticated) return;
    const origin = await this.base();
    const res = await this.transport.send({ method: "GET", url: new URL("/v2/", origin) });
    res.body.resume();
    if (res.status === 401)
      this.authorization = await answerChallenge(res, this.access(), await this.creds());
    else if (res.status !== 200)
      throw new VmError(
        "REGISTRY_REQUEST_FAILED",
        `${this.registry} is not a registry vm can use: GET /v2/ answered HTTP ${res.status}`,
        {
          hint: "Check the address: it must be an OCI distribution (docker) registry",
        },
      );
    this.authenticated = true;
  }

  private access(): AccessRequest {
    const { registry, repository, transport } = this;
    return { registry, repository, transport, actions: this.options.actions };
  }

  /**
   * One authenticated request; a 401 with a resendable body gets a fresh token and one more try. The
   * registry's Authorization goes only to its own origin (as docker sends it only where it answered the
   * challenge): an upload Location elsewhere, or over http where the registry is https, goes without it.
   */
  protected async send(method: string, path: string, options: SendOptions): Promise<HttpResponse> {
    await this.authenticate();
    const origin = await this.base();
    const url = new URL(path, origin);
    // Normalized by URL: `host:443` over https is `host`.
    const home = new URL(origin).origin;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...options.headers };
      if (this.authorization && url.origin === home) headers.Authorization = this.authorization;
      let res: HttpResponse;
      try {
        res = await this.transport.send({
          method,
          url,
          headers,
          ...(options.body ? { body: options.body } : {}),
          ...(options.length !== undefined ? { length: options.length } : {}),
        });
      } catch (error) {
        if (isVmError(error)) throw error;
        throw new VmError(
          "REGISTRY_UNREACHABLE",
          `${options.what} on ${this.registry} failed: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      // Only the registry's own challenge is answered: another origin's could name any token service.
      const own = res.url.origin === home;
      if (res.status === 401 && attempt === 0 && own && (!options.body || Buffer.isBuffer(options.body))) {
        res.body.resume();
        this.authorization = await answerChallenge(res, this.access(), await this.creds());
        continue;
      }
      if (options.accept.includes(res.status)) return res;
      const errors = await registryErrors(res);
      if (res.status === 401 || res.status === 403)
        throw accessDenied(res.status, this.access(), await this.creds());
      const said = errors.map((e) => e.message || e.code).join("; ");
      if (res.status === 404)
        throw new VmError(
          "REGISTRY_NOT_FOUND",
          `${this.registry} has no ${options.what.replace(/^read /, "")}${said ? ` (${said})` : ""}`,
          {
            hint: "Check the reference: registry/repository:tag",
          },
        );
      throw new VmError(
        "REGISTRY_REQUEST_FAILED",
        `${this.registry} could not ${options.what}: HTTP ${res.status}${said ? ` (${said})` : ""}`,
        { hint: "Try again; if it persists, check the registry's logs" },
      );
    }
  }
}
