import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";

/**
 * The real image registries scripts/registry runs on loopback (Distribution 2.8), as the tests see them:
 * their addresses, credentials and storage folders, read from the facts file the script writes.
 */
export const REGISTRY_INFO_FILE = "/etc/vm-dev/registry/registries.json";

const base = {
  host: z.string().min(1),
  url: z.string().min(1),
  storageRoot: z.string().min(1),
  config: z.string().min(1),
  log: z.string().min(1),
  pidFile: z.string().min(1),
};
const InfoSchema = z.object({
  version: z.literal(1),
  registries: z.object({
    plain: z.object(base),
    tls: z.object({
      ...base,
      user: z.string().min(1),
      password: z.string().min(1),
      ca: z.string().min(1),
      htpasswd: z.string().min(1),
    }),
    token: z.object({
      ...base,
      realm: z.string().min(1),
      tokenServerPort: z.number().int(),
      service: z.string().min(1),
      issuer: z.string().min(1),
      signingKey: z.string().min(1),
      signingCert: z.string().min(1),
    }),
  }),
});

export type RegistryName = "plain" | "tls" | "token";

interface RegistryBase {
  name: RegistryName;
  /** host:port, as image references and `docker login` name it (127.0.0.1:5101). */
  host: string;
  /** Base URL (http://127.0.0.1:5101 or https://127.0.0.1:5102). */
  url: string;
  scheme: "http" | "https";
  /** The registry's filesystem storage root (blobs under docker/registry/v2/blobs). */
  storageRoot: string;
  config: string;
  log: string;
  pidFile: string;
}
/** Plain HTTP, anonymous. */
export interface PlainRegistry extends RegistryBase {
  name: "plain";
}
/** HTTPS with a certificate from a test CA, htpasswd Basic auth. */
export interface TlsRegistry extends RegistryBase {
  name: "tls";
  user: string;
  password: string;
  /** Path of the test CA's certificate (PEM); also installed in /etc/docker/certs.d/HOST/ca.crt. */
  ca: string;
  htpasswd: string;
}
/** Plain HTTP, Bearer tokens from a token server the tests run (test/helpers/token-server.ts). */
export interface TokenRegistry extends RegistryBase {
  name: "token";
  realm: string;
  tokenServerPort: number;
  service: string;
  issuer: string;
  /** PEM private key (EC P-256) the registry trusts tokens from, through signingCert. */
  signingKey: string;
  /** PEM self-signed certificate of signingKey: the registry's rootcertbundle. */
  signingCert: string;
}
export type TestRegistry = PlainRegistry | TlsRegistry | TokenRegistry;
export interface TestRegistries {
  plain: PlainRegistry;
  tls: TlsRegistry;
  token: TokenRegistry;
}

let cached: TestRegistries | undefined;

/** The three registries; throws, saying what to run, when scripts/registry has not set them up. */
export function testRegistries(): TestRegistries {
  if (cached) return cached;
  if (!existsSync(REGISTRY_INFO_FILE))
    throw new Error(
      `The test registries are not set up: ${REGISTRY_INFO_FILE} is missing. ` +
        "Run `bash scripts/setup` (or `bash scripts/registry start`) first.",
    );
  let parsed: z.infer<typeof InfoSchema>;
  try {
    parsed = InfoSchema.parse(JSON.parse(readFileSync(REGISTRY_INFO_FILE, "utf8")));
  } catch (error) {
    throw new Error(
      `${REGISTRY_INFO_FILE} is not what scripts/registry writes (${(error as Error).message}). ` +
        "Run `bash scripts/setup` (or `bash scripts/registry start`) again.",
      { cause: error },
    );
  }
  const r = parsed.registries;
  cached = {
    plain: { ...r.plain, name: "plain", scheme: "http" },
    tls: { ...r.tls, name: "tls", scheme: "https" },
    token: { ...r.token, name: "token", scheme: "http" },
  };
  return cached;
}

export function testRegistry<N extends RegistryName>(name: N): TestRegistries[N] {
  return testRegistries()[name];
}

/** Fails, saying what to run, unless the registry answers GET /v2/ as scripts/registry starts it. */
export async function assertRegistryAnswers(registry: TestRegistry): Promise<void> {
  const expected = registry.name === "plain" ? 200 : 401;
  let status: number | string;
  try {
    status = (await registryRequest(registry, "GET", "/v2/", { anonymous: true })).status;
  } catch (error) {
    status = (error as Error).message;
  }
  if (status !== expected)
    throw new Error(
      `Test registry ${registry.name} at ${registry.url} does not answer GET /v2/ with ${expected} (got ${status}). ` +
        "Run `bash scripts/registry start` (it is part of `bash scripts/setup`).",
    );
}

// ---------------------------------------------------------------------------------------------
// Repository names

/** Differs between test processes (node --test runs each file in its own), so files never share a repo. */
export const REGISTRY_RUN_ID = `${Date.now().toString(36)}-${process.pid.toString(36)}${randomBytes(2).toString("hex")}`;
let repoCounter = 0;

/** A repository name no other test (in this process or any other) uses: vm-test/RUNID/LABEL-N. */
export function uniqueRepo(label = "repo"): string {
  const slug =
    label
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 40)
      .replace(/-+$/, "") || "repo";
  return `vm-test/${REGISTRY_RUN_ID}/${slug}-${++repoCounter}`;
}

// ---------------------------------------------------------------------------------------------
// What the registry stored on disk (the filesystem driver's layout)

/** docker/registry/v2/blobs under the registry's storage root: ALG/XX/HEX/data per blob. */
export function blobsDir(registry: TestRegistry): string {
  return join(registry.storageRoot, "docker", "registry", "v2", "blobs");
}

export function blobDataPath(registry: TestRegistry, digest: string): string {
  const m = /^([a-z0-9]+):([a-f0-9]{2})([a-f0-9]+)$/.exec(digest);
  if (!m) throw new Error(`not a digest: ${digest}`);
  return join(blobsDir(registry), m[1]!, m[2]!, m[2]! + m[3]!, "data");
}

/**
 * Every blob the registry stores (layers, configs and manifests alike), digest -> size of its `data`
 * file. Blobs are shared by all repositories and outlive manifest deletes (no garbage collection runs),
 * so compare two of these (blobsAdded) to see what one upload added.
 */
export function storedBlobs(registry: TestRegistry): Map<string, number> {
  const out = new Map<string, number>();
  const root = blobsDir(registry);
  if (!existsSync(root)) return out;
  for (const alg of readdirSync(root)) {
    for (const prefix of readdirSync(join(root, alg))) {
      for (const hex of readdirSync(join(root, alg, prefix))) {
        const data = join(root, alg, prefix, hex, "data");
        let size: number;
        try {
          size = statSync(data).size;
        } catch {
          continue; // a folder without data: an upload being committed right now
        }
        out.set(`${alg}:${hex}`, size);
      }
    }
  }
  return out;
}

/** The digests of all stored blobs, sorted. */
export function listBlobDigests(registry: TestRegistry): string[] {
  return [...storedBlobs(registry).keys()].sort();
}

/** Sum of the sizes of the stored blobs (all of them, or only `digests`). */
export function storedBlobBytes(registry: TestRegistry, digests?: Iterable<string>): number {
  const blobs = storedBlobs(registry);
  let total = 0;
  if (!digests) {
    for (const size of blobs.values()) total += size;
    return total;
  }
  for (const d of digests) {
    const size = blobs.get(d);
    if (size === undefined) throw new Error(`blob ${d} is not stored in registry ${registry.name}`);
    total += size;
  }
  return total;
}

/**
 * Blobs in `after` that were not in `before` (two storedBlobs() results). A blob another test stored
 * first is not "added" by yours even if your upload contains it: give the content something unique.
 */
export function blobsAdded(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [d, size] of after) if (!before.has(d)) out.set(d, size);
  return out;
}

export function totalBytes(blobs: Map<string, number>): number {
  let total = 0;
  for (const size of blobs.values()) total += size;
  return total;
}

/**
 * Rewrites a stored blob in place so that its content no longer matches its digest: one byte (the
 * middle one) is inverted, the length stays the same. The registry keeps serving it as if nothing
 * happened. Blobs are shared across repositories and test files: only corrupt a blob no other test can
 * be using (content unique to your test), and call restore() when done.
 */
export function corruptBlob(registry: TestRegistry, digest: string): { path: string; restore: () => void } {
  const path = blobDataPath(registry, digest);
  const size = statSync(path).size;
  if (size === 0) throw new Error(`blob ${digest} is empty; there is no byte to corrupt`);
  const flip = () => {
    const fd = openSync(path, "r+");
    try {
      const b = Buffer.alloc(1);
      const at = Math.floor(size / 2);
      readSync(fd, b, 0, 1, at);
      b[0] = b[0]! ^ 0xff;
      writeSync(fd, b, 0, 1, at);
    } finally {
      closeSync(fd);
    }
  };
  flip();
  let restored = false;
  return {
    path,
    restore: () => {
      if (restored) return;
      restored = true;
      flip();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The registry's HTTP API, for setup and cleanup (not a client under test)

export interface Credentials {
  user: string;
  password: string;
}

export interface RegistryResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RegistryRequestOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** For tls: defaults to the registry's own user; for token: sent to the token realm. */
  credentials?: Credentials;
  /** Send no credentials at all, and do not answer a challenge. */
  anonymous?: boolean;
  /** Trust this CA (PEM text) instead of the registry's test CA (tls only). */
  ca?: string;
}

function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer | string | undefined,
  ca: string | undefined,
): Promise<RegistryResponse> {
  return new Promise((resolvePromise, reject) => {
    const u = new URL(url);
    const send = u.protocol === "https:" ? httpsRequest : httpRequest;
    const req = send(
      u,
      { method, headers, timeout: 30_000, ...(u.protocol === "https:" && ca !== undefined ? { ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${url}: timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** Parses `Bearer realm="...",service="...",scope="..."` (or Basic) into its scheme and parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  const params: Record<string, string> = {};
  if (!m) return { scheme: "", params };
  for (const p of m[2]!.matchAll(/(\w+)="([^"]*)"/g)) params[p[1]!.toLowerCase()] = p[2]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

function basic(c: Credentials): string {
  return "Basic " + Buffer.from(`${c.user}:${c.password}`).toString("base64");
}

/**
 * One request to a test registry, answering its auth challenge: Basic with the tls registry's user (or
 * `credentials`), or a Bearer token fetched from the challenge's realm for the challenge's scope (with
 * `credentials` as Basic auth when given, anonymously otherwise).
 */
export async function registryRequest(
  registry: TestRegistry,
  method: string,
  path: string,
  options: RegistryRequestOptions = {},
): Promise<RegistryResponse> {
  const ca = options.ca ?? (registry.name === "tls" ? readFileSync(registry.ca, "utf8") : undefined);
  const url = registry.url + path;
  const headers = { ...options.headers };
  const creds = options.credentials ?? (registry.name === "tls" ? registry : undefined);
  if (!options.anonymous && registry.name === "tls" && creds)
    headers.authorization = basic({ user: creds.user, password: creds.password });
  const first = await rawRequest(url, method, headers, options.body, ca);
  const challenge = first.headers["www-authenticate"];
  if (first.status !== 401 || options.anonymous || typeof challenge !== "string") return first;
  const { scheme, params } = parseChallenge(challenge);
  if (scheme !== "bearer" || !params.realm) return first;
  const tokenUrl = new URL(params.realm);
  if (params.service) tokenUrl.searchParams.set("service", params.service);
  if (params.scope) for (const s of params.scope.split(" ")) tokenUrl.searchParams.append("scope", s);
  const tokenHeaders: Record<string, string> = creds ? { authorization: basic(creds) } : {};
  const tokenRes = await rawRequest(tokenUrl.toString(), "GET", tokenHeaders, undefined, undefined);
  if (tokenRes.status !== 200)
    throw new Error(
      `token realm ${tokenUrl.toString()} answered ${tokenRes.status}: ${tokenRes.body.toString()}`,
    );
  const { token } = JSON.parse(tokenRes.body.toString()) as { token: string };
  return rawRequest(url, method, { ...headers, authorization: `Bearer ${token}` }, options.body, ca);
}

/** What a manifest GET/HEAD accepts: Docker v2 and OCI manifests and indexes. */
export const MANIFEST_ACCEPT = [
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
].join(", ");

/** The digest a tag (or digest) resolves to, or undefined when the registry has no such manifest. */
export async function manifestDigest(
  registry: TestRegistry,
  repo: string,
  reference: string,
  options: RegistryRequestOptions = {},
): Promise<string | undefined> {
  const res = await registryRequest(registry, "HEAD", `/v2/${repo}/manifests/${reference}`, {
    ...options,
    headers: { accept: MANIFEST_ACCEPT, ...options.headers },
  });
  if (res.status === 404) return undefined;
  const digest = res.headers["docker-content-digest"];
  if (res.status !== 200 || typeof digest !== "string")
    throw new Error(`HEAD ${repo}:${reference} on registry ${registry.name} answered ${res.status}`);
  return digest;
}

/**
 * Deletes a manifest (by tag or digest) through the API, the way tests clean up what they pushed; the
 * tags pointing at it go with it. Returns the digest deleted, or undefined when there was nothing to
 * delete. Blobs stay on disk (no garbage collection).
 */
export async function deleteManifest(
  registry: TestRegistry,
  repo: string,
  reference: string,
  options: RegistryRequestOptions = {},
): Promise<string | undefined> {
  const digest = reference.includes(":")
    ? reference
    : await manifestDigest(registry, repo, reference, options);
  if (!digest) return undefined;
  const res = await registryRequest(registry, "DELETE", `/v2/${repo}/manifests/${digest}`, options);
  if (res.status === 404) return undefined;
  if (res.status !== 202)
    throw new Error(
      `DELETE ${repo}@${digest} on registry ${registry.name} answered ${res.status}: ${res.body.toString()}`,
    );
  return digest;
}

// ---------------------------------------------------------------------------------------------
// The docker CLI with a private config folder (never the real ~/.docker)

export interface DockerCli {
  engineHost: string;
  /** The temporary folder given as `docker --config`; holds the logins made through this object. */
  configDir: string;
  /** Runs docker; throws with its stderr when it fails. Returns trimmed stdout. */
  run(args: string[], input?: string): string;
  /** Runs docker; never throws. */
  tryRun(args: string[], input?: string): { status: number; stdout: string; stderr: string };
  /** Removes the config folder (and the credentials in it). */
  dispose(): void;
}

/** The docker CLI against one engine with an empty, private config folder: no credentials at all. */
export function dockerCli(engineHost: string): DockerCli {
  const configDir = mkdtempSync(join(tmpdir(), "vm-docker-config-"));
  writeFileSync(join(configDir, "config.json"), '{\n  "auths": {}\n}\n', { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_BUILDKIT: "0" };
  delete env.DOCKER_CONTEXT;
  delete env.DOCKER_HOST;
  delete env.DOCKER_CONFIG;
  const tryRun = (args: string[], input?: string) => {
    const res = spawnSync("docker", ["--config", configDir, "-H", engineHost, ...args], {
      encoding: "utf8",
      env,
      input: input ?? "",
      timeout: 180_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return {
      status: res.status ?? 1,
      stdout: (res.stdout ?? "").trim(),
      stderr: (res.stderr ?? "").trim() || (res.error?.message ?? ""),
    };
  };
  return {
    engineHost,
    configDir,
    tryRun,
    run(args, input) {
      const res = tryRun(args, input);
      if (res.status !== 0)
        throw new Error(
          `docker ${args.join(" ")} (engine ${engineHost}) exited ${res.status}: ${res.stderr}`,
        );
      return res.stdout;
    },
    dispose() {
      rmSync(configDir, { recursive: true, force: true });
    },
  };
}

/**
 * `docker login` to a registry through one engine (the engine does the login), with the credentials
 * kept in a private temporary config folder. Use the returned CLI for the pushes and pulls that need
 * the login, and dispose() it afterwards.
 */
export function dockerLogin(
  engineHost: string,
  registry: string | { host: string },
  user: string,
  password: string,
): DockerCli {
  const host = typeof registry === "string" ? registry : registry.host;
  const cli = dockerCli(engineHost);
  const res = cli.tryRun(["login", "--username", user, "--password-stdin", host], password);
  if (res.status !== 0) {
    cli.dispose();
    throw new Error(`docker login ${host} as ${user} (engine ${engineHost}) failed: ${res.stderr}`);
  }
  return cli;
}
