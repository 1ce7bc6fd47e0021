import {
  X509Certificate,
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign,
  timingSafeEqual,
  type KeyObject,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  MessageChannel,
  Worker,
  isMainThread,
  parentPort,
  receiveMessageOnPort,
  workerData,
  type MessagePort,
} from "node:worker_threads";
import { testRegistry } from "./registry.ts";

/**
 * A Bearer token server for the token registry scripts/registry runs, following the distribution token
 * spec (https://distribution.github.io/distribution/spec/auth/token/): GET /token?service=&scope= with
 * optional Basic auth, and the OAuth2 form POST /token (grant_type=password) that containerd (engine 2)
 * tries first. Tokens are JWTs signed with the key in /etc/vm-dev/registry/token/, which the registry
 * trusts through its rootcertbundle.
 *
 * The server runs in a worker thread, so it keeps answering while the test's own thread is blocked in
 * spawnSync/execFileSync (the docker CLI helpers are synchronous, and `docker login` or a pull against the
 * token registry makes the engine call this server while the test waits for docker).
 *
 * What Distribution 2.8 checks (seen by experiment, pinned in test/registry-infra.test.ts): `iss` is the
 * configured issuer, `aud` is the service *as a string* (a JSON array is refused), `exp`/`nbf` within 60 s
 * of leeway, and the signing key: either `x5c` in the JWT header (the signing certificate, base64 DER,
 * which must verify against rootcertbundle) or `kid` = the libtrust key ID of a key in rootcertbundle.
 * ES256 signatures must be JOSE r||s (64 bytes); a DER-encoded one is refused.
 */

/** One `type:name:actions` scope a client asked for. */
export interface TokenScope {
  type: string;
  name: string;
  actions: string[];
}

/** One entry of the JWT's `access` claim. */
export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** One request the server answered, for tests to assert which scopes were asked and what was granted. */
export interface TokenRequestRecord {
  method: string;
  path: string;
  /** The `service` parameter (query or form). */
  service: string | undefined;
  /** The raw scope strings, in the order asked (several `scope` parameters, or space-separated). */
  scopes: string[];
  /** The authenticated user, or undefined for an anonymous request (or one refused with 401). */
  user: string | undefined;
  /** The user name the client presented (Basic auth or the form's username), even when refused. */
  presentedUser: string | undefined;
  via: "basic" | "oauth-password" | "oauth-refresh" | "anonymous";
  /** The `account`, `client_id` and `offline_token` parameters docker sends on login. */
  account: string | undefined;
  clientId: string | undefined;
  offlineToken: boolean;
  status: number;
  granted: TokenAccess[];
  /** The token issued, if any. */
  token: string | undefined;
  /** Set when the grant function threw (the request was answered 500). */
  error?: string;
}

/** Which of a scope's actions to grant `user` (undefined: anonymous). */
export type GrantFunction = (user: string | undefined, scope: TokenScope) => string[];

export interface TokenServerOptions {
  /** Defaults to the port the token registry's realm names (5104). */
  port?: number;
  /** name -> password; Basic auth with a pair not in here is refused with 401. */
  users?: Record<string, string>;
  /**
   * Which of the scope's actions to grant. Default: an authenticated user gets every action asked for;
   * an anonymous client gets only `pull` on repositories.
   *
   * It runs in the server's worker thread, compiled from its source text: it must be self-contained
   * (use only its arguments and globals, no variables of the test around it). If it throws, the request
   * is answered 500 and close() rejects with that error.
   */
  grant?: GrantFunction;
  /** How the JWT header names its signing key: "x5c" (the certificate, the default) or libtrust "kid". */
  keyHeader?: "x5c" | "kid";
  /** Token lifetime in seconds (default 300). */
  expiresIn?: number;
  /** Override the claims, for tests of tokens the registry must refuse. */
  issuer?: string;
  audience?: string | string[];
  /** Signing key and certificate (PEM paths); default: the ones scripts/registry generated. */
  keyFile?: string;
  certFile?: string;
}

export interface TokenServer {
  /** http://127.0.0.1:PORT/token */
  realm: string;
  port: number;
  /** Every request served so far, oldest first (read it after the client got its answer). */
  readonly requests: readonly TokenRequestRecord[];
  /** Signs a token directly (same claims as the server issues), e.g. to call the registry API by hand. */
  issue(user: string | undefined, access: TokenAccess[]): string;
  /** Stops the server; rejects if a grant function threw while serving. */
  close(): Promise<void>;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** libtrust's key ID: the first 240 bits of SHA-256(DER SubjectPublicKeyInfo), base32, 12 groups of 4. */
export function libtrustKeyId(key: KeyObject): string {
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  const digest = createHash("sha256").update(spki).digest().subarray(0, 30);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  let s = "";
  for (const byte of digest) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      s += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return s.match(/.{4}/g)!.join(":");
}

/** Parses `repository:NAME:pull,push` (the type may carry a class: `repository(plugin)`). */
export function parseScope(scope: string): TokenScope | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(",")
      .filter((a) => a !== ""),
  };
}

function defaultGrant(user: string | undefined, scope: TokenScope): string[] {
  if (user !== undefined) return scope.actions;
  return scope.type === "repository" ? scope.actions.filter((a) => a === "pull") : [];
}

export type TokenIssuerOptions = Pick<
  TokenServerOptions,
  "keyHeader" | "expiresIn" | "issuer" | "audience" | "keyFile" | "certFile"
>;

/**
 * Signs tokens the way the server does, without serving anything (so a test can make tokens with odd
 * claims whether or not a server holds the port).
 */
export function tokenIssuer(
  options: TokenIssuerOptions = {},
): (user: string | undefined, access: TokenAccess[]) => string {
  const registry = testRegistry("token");
  const expiresIn = options.expiresIn ?? 300;
  const issuer = options.issuer ?? registry.issuer;
  const audience = options.audience ?? registry.service;
  const key = createPrivateKey(readFileSync(options.keyFile ?? registry.signingKey));
  const cert = new X509Certificate(readFileSync(options.certFile ?? registry.signingCert));
  const alg =
    key.asymmetricKeyType === "ec" ? "ES256" : key.asymmetricKeyType === "rsa" ? "RS256" : undefined;
  if (!alg) throw new Error(`token server: unsupported signing key type ${key.asymmetricKeyType}`);
  if (alg === "ES256" && key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
    throw new Error("token server: an EC signing key must be on P-256 for ES256");
  const header =
    options.keyHeader === "kid"
      ? { typ: "JWT", alg, kid: libtrustKeyId(key) }
      : { typ: "JWT", alg, x5c: [cert.raw.toString("base64")] };
  const encodedHeader = b64url(JSON.stringify(header));
  return (user, access) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: issuer,
      sub: user ?? "",
      aud: audience,
      exp: now + expiresIn,
      nbf: now - 1,
      iat: now,
      jti: randomBytes(16).toString("hex"),
      access,
    };
    const signingInput = `${encodedHeader}.${b64url(JSON.stringify(claims))}`;
    // JOSE wants ECDSA signatures as r||s (64 bytes for P-256); Distribution refuses DER ones.
    const signature =
      alg === "ES256"
        ? sign("sha256", Buffer.from(signingInput), { key, dsaEncoding: "ieee-p1363" })
        : sign("sha256", Buffer.from(signingInput), key);
    return `${signingInput}.${b64url(signature)}`;
  };
}

// ---------------------------------------------------------------------------------------------
// The worker side

interface WorkerConfig {
  port: number;
  users: Record<string, string>;
  grantSource: string | undefined;
  issuerOptions: TokenIssuerOptions;
  expiresIn: number;
  service: string;
  realm: string;
}

type WorkerMessage = { type: "listening" } | { type: "listen-error"; code: string; message: string };

/** Compiles a grant function from its source (an arrow or function expression, or a method). */
function compileGrant(source: string): GrantFunction {
  for (const body of [`return (${source});`, `return Object.values({ ${source} })[0];`]) {
    let fn: unknown;
    try {
      // The grant function crosses into this worker as source text; there is no other way to rebuild it.
      // eslint-disable-next-line @typescript-eslint/no-implied-eval
      fn = (new Function(body) as () => unknown)();
    } catch {
      continue;
    }
    if (typeof fn === "function") return fn as GrantFunction;
  }
  throw new Error(`token server: cannot rebuild the grant function from its source:\n${source}`);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
      if (body.length > 1 << 20) req.destroy(new Error("request body too large"));
    });
    req.on("end", () => resolvePromise(body));
    req.on("error", reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

const BASIC_CHALLENGE = { "www-authenticate": 'Basic realm="vm-test-token-server"' };

function serve(config: WorkerConfig, records: MessagePort, control: MessagePort): void {
  const grant = config.grantSource ? compileGrant(config.grantSource) : defaultGrant;
  const issue = tokenIssuer(config.issuerOptions);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", `http://127.0.0.1:${config.port}`);
    const record: TokenRequestRecord = {
      method: req.method ?? "",
      path: url.pathname,
      service: undefined,
      scopes: [],
      user: undefined,
      presentedUser: undefined,
      via: "anonymous",
      account: undefined,
      clientId: undefined,
      offlineToken: false,
      status: 0,
      granted: [],
      token: undefined,
    };
    const reply = (status: number, body: unknown, headers?: Record<string, string>) => {
      record.status = status;
      // Recorded before the answer leaves, so a client that got its answer finds its request recorded.
      records.postMessage(record);
      sendJson(res, status, body, headers);
    };
    if (url.pathname !== "/token")
      return reply(404, { errors: [{ code: "NOT_FOUND", message: "no such path" }] });
    if (req.method !== "GET" && req.method !== "POST")
      return reply(
        405,
        { errors: [{ code: "UNSUPPORTED", message: "GET or POST only" }] },
        { allow: "GET, POST" },
      );

    let params: URLSearchParams;
    let presented: { user: string; password: string } | undefined;
    if (req.method === "GET") {
      params = url.searchParams;
      const auth = req.headers.authorization;
      if (auth !== undefined) {
        const m = /^Basic\s+(\S+)$/i.exec(auth);
        const decoded = m ? Buffer.from(m[1]!, "base64").toString("utf8") : "";
        const colon = decoded.indexOf(":");
        record.via = "basic";
        if (colon < 0)
          return reply(
            401,
            { errors: [{ code: "UNAUTHORIZED", message: "Basic auth expected" }] },
            BASIC_CHALLENGE,
          );
        presented = { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
    } else {
      params = new URLSearchParams(await readBody(req));
      const grantType = params.get("grant_type");
      if (grantType !== "password") {
        // No refresh tokens are ever issued, so there is none to accept; clients fall back to GET.
        record.via = grantType === "refresh_token" ? "oauth-refresh" : "anonymous";
        return reply(400, { error: "unsupported_grant_type" });
      }
      presented = { user: params.get("username") ?? "", password: params.get("password") ?? "" };
      record.via = "oauth-password";
    }
    record.service = params.get("service") ?? undefined;
    record.scopes = params.getAll("scope").flatMap((s) => s.split(" ").filter((x) => x !== ""));
    record.account = params.get("account") ?? undefined;
    record.clientId = params.get("client_id") ?? undefined;
    record.offlineToken = params.get("offline_token") === "true";

    if (presented) {
      record.presentedUser = presented.user;
      const expected = Object.hasOwn(config.users, presented.user) ? config.users[presented.user] : undefined;
      if (expected === undefined || !safeEqual(expected, presented.password))
        return req.method === "POST"
          ? reply(401, { error: "invalid_grant", error_description: "bad username or password" })
          : reply(
              401,
              { errors: [{ code: "UNAUTHORIZED", message: "bad username or password" }] },
              BASIC_CHALLENGE,
            );
      record.user = presented.user;
    }
    if (record.service !== undefined && record.service !== config.service)
      return reply(400, {
        errors: [
          {
            code: "DENIED",
            message: `unknown service ${record.service} (this server serves ${config.service})`,
          },
        ],
      });

    for (const raw of record.scopes) {
      const scope = parseScope(raw);
      if (!scope) continue;
      let actions: string[];
      try {
        actions = grant(record.user, { ...scope, actions: [...scope.actions] });
      } catch (error) {
        record.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
        return reply(500, {
          errors: [{ code: "UNKNOWN", message: `grant function threw: ${record.error}` }],
        });
      }
      actions = actions.filter((a) => scope.actions.includes(a) || scope.actions.includes("*"));
      if (actions.length > 0) record.granted.push({ type: scope.type, name: scope.name, actions });
    }
    const token = issue(record.user, record.granted);
    record.token = token;
    reply(200, {
      token,
      access_token: token,
      expires_in: config.expiresIn,
      issued_at: new Date().toISOString(),
    });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { errors: [{ code: "UNKNOWN", message: String(error) }] });
      else res.destroy();
    });
  });
  server.once("error", (error: NodeJS.ErrnoException) => {
    control.postMessage({
      type: "listen-error",
      code: error.code ?? "",
      message: error.message,
    } satisfies WorkerMessage);
    control.close();
    records.close();
  });
  server.listen(config.port, "127.0.0.1", () => {
    control.postMessage({ type: "listening" } satisfies WorkerMessage);
  });
  control.on("message", (m: { type: string }) => {
    if (m.type !== "close") return;
    server.close(() => {
      records.close();
      control.close();
    });
    server.closeAllConnections();
  });
}

const workerInput = workerData as { vmTokenServer?: WorkerConfig; records?: MessagePort } | null;
if (!isMainThread && workerInput?.vmTokenServer && workerInput.records && parentPort)
  serve(workerInput.vmTokenServer, workerInput.records, parentPort);

// ---------------------------------------------------------------------------------------------
// The test side

/** Starts the token server on 127.0.0.1 (in a worker thread). Rejects, clearly, when the port is taken. */
export async function startTokenServer(options: TokenServerOptions = {}): Promise<TokenServer> {
  const registry = testRegistry("token");
  const port = options.port ?? registry.tokenServerPort;
  const expiresIn = options.expiresIn ?? 300;
  const issuerOptions: TokenIssuerOptions = {
    ...(options.keyHeader !== undefined ? { keyHeader: options.keyHeader } : {}),
    expiresIn,
    ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
    ...(options.audience !== undefined ? { audience: options.audience } : {}),
    ...(options.keyFile !== undefined ? { keyFile: options.keyFile } : {}),
    ...(options.certFile !== undefined ? { certFile: options.certFile } : {}),
  };
  const issue = tokenIssuer(issuerOptions); // also checks the key before a worker starts
  const grantSource = options.grant?.toString();
  if (grantSource !== undefined) compileGrant(grantSource); // fail here, not inside the worker
  const config: WorkerConfig = {
    port,
    users: { ...options.users },
    grantSource,
    issuerOptions,
    expiresIn,
    service: registry.service,
    realm: registry.realm,
  };
  const channel = new MessageChannel();
  const worker = new Worker(new URL(import.meta.url), {
    workerData: { vmTokenServer: config, records: channel.port2 },
    transferList: [channel.port2],
  });
  const exited = new Promise<number>((resolvePromise) => worker.once("exit", resolvePromise));
  await new Promise<void>((resolvePromise, reject) => {
    worker.once("error", reject);
    void exited.then((code) =>
      reject(new Error(`token server: its worker exited (${code}) before listening`)),
    );
    worker.once("message", (m: WorkerMessage) => {
      if (m.type === "listening") return resolvePromise();
      reject(
        m.code === "EADDRINUSE"
          ? new Error(
              `token server: 127.0.0.1:${port} is already in use (another test's token server, or something ` +
                `else: ss -ltnp 'sport = :${port}'). The token registry's realm (${registry.realm}) names ` +
                "this port, so the server cannot move to another one; run such tests one at a time.",
            )
          : new Error(`token server: cannot listen on 127.0.0.1:${port}: ${m.message}`),
      );
    });
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  worker.removeAllListeners("error");
  worker.on("error", () => {}); // after start, failures show up as 500s and in close()
  worker.unref(); // a test that forgets close() must not hang its process

  const requests: TokenRequestRecord[] = [];
  const drain = () => {
    for (let m = receiveMessageOnPort(channel.port1); m; m = receiveMessageOnPort(channel.port1))
      requests.push(m.message as TokenRequestRecord);
    return requests;
  };
  let closing: Promise<void> | undefined;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    port,
    get requests() {
      return drain();
    },
    issue,
    close() {
      closing ??= (async () => {
        worker.ref();
        worker.postMessage({ type: "close" });
        const timer = setTimeout(() => void worker.terminate(), 5_000);
        await exited;
        clearTimeout(timer);
        drain();
        channel.port1.close();
        const failed = requests.find((r) => r.error !== undefined);
        if (failed) throw new Error(`token server: the grant function threw: ${failed.error}`);
      })();
      return closing;
    },
  };
}
