import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { VmError, systemErrorCode } from "../errors.ts";
import { askHelper } from "./credential-helper.ts";
import { credentialKeys } from "./reference.ts";

/**
 * Registry credentials where docker users already keep them: the docker CLI's config.json, its credential
 * helpers, and DOCKER_AUTH_CONFIG. Lookup follows docker/cli's cli/config (configfile/file.go,
 * credentials/native_store.go) and the docker-credential-helpers protocol.
 */

/** What to log in with, and where it was found (for messages; never the secret itself). */
export type Credentials =
  | { kind: "basic"; username: string; password: string; source: string }
  /** An OAuth2 refresh token (`docker login` to Docker Hub with SSO, or a helper's `<token>` answer). */
  | { kind: "token"; identityToken: string; source: string };

export interface ResolveOptions {
  /** How long a credential helper may take to answer before it is killed (default 30 s). */
  helperTimeoutMs?: number;
}

const HELPER_TIMEOUT_MS = 30_000;

type Entries = Record<string, unknown>;

interface DockerConfig {
  file: string;
  auths: Entries;
  credHelpers: Record<string, string>;
  credsStore: string | undefined;
}

/**
 * The credentials docker would use for a registry (a RegistryRef's `registry`), or undefined for
 * anonymous access. In docker's order:
 * 1. DOCKER_AUTH_CONFIG (docker 28.3+), a config.json-shaped `{"auths": ...}` in the environment;
 * 2. config.json (`$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`; none means anonymous):
 *    `credHelpers` for one of the registry's keys (see credentialKeys), else `credsStore`, else `auths`.
 *    Docker itself looks up credHelpers and DOCKER_AUTH_CONFIG under the first key only; the other keys
 *    matter only to files written by other tools.
 *
 * With a helper configured for the registry (credHelpers or credsStore), `auths` is not consulted: docker's
 * native store keeps only an email from the file and takes the credentials from the helper, so a helper
 * that has none means anonymous, even when an old `auths` entry still holds a password. Where docker
 * ignores a failing helper and goes on anonymously, vm stops with REGISTRY_CREDENTIALS_FAILED: a push
 * refused as "unauthorized" would hide the cause. A helper is `docker-credential-<name>` on PATH, asked
 * `get` with the registry's first key on stdin.
 */
export async function resolveCredentials(
  registry: string,
  env: NodeJS.ProcessEnv,
  options: ResolveOptions = {},
): Promise<Credentials | undefined> {
  const keys = credentialKeys(registry);
  if (env.DOCKER_AUTH_CONFIG) {
    const found = findEntry(parseEnvAuths(env.DOCKER_AUTH_CONFIG), keys);
    if (found)
      return entryCredentials(found.entry, "DOCKER_AUTH_CONFIG", (what) =>
        envError(`has an auths["${found.key}"] that ${what}`),
      );
  }

  const config = await readDockerConfig(env);
  if (!config) return undefined;
  const { file, credHelpers, credsStore } = config;
  // A credHelpers entry of "" picks no helper, and so the file: docker's way to exempt a registry from credsStore.
  const helperKey = keys.find((key) => Object.hasOwn(credHelpers, key));
  const name = helperKey === undefined ? credsStore : credHelpers[helperKey];
  const field = helperKey === undefined ? "credsStore" : "credHelpers";
  if (name)
    return askHelper(
      { name, field, file },
      keys[0]!,
      registry,
      env,
      options.helperTimeoutMs ?? HELPER_TIMEOUT_MS,
    );
  const found = findEntry(config.auths, keys, { byHost: true });
  return (
    found &&
    entryCredentials(found.entry, `auths in ${file}`, (what) =>
      configError(
        file,
        `has an auths["${found.key}"] that ${what}`,
        `Log in again to rewrite it: docker login ${registry}`,
      ),
    )
  );
}

/**
 * The X-Registry-Auth header the Docker Engine API takes on image push and pull: the JSON of docker's
 * AuthConfig (`username`/`password` or `identitytoken`, and `serveraddress`), base64url-encoded with
 * padding as the docker CLI sends it (older engines' decoders lose the end of unpadded input). Undefined
 * for anonymous access: leave the header out.
 */
export function dockerAuthHeader(credentials: Credentials | undefined, registry: string): string | undefined {
  if (!credentials) return undefined;
  const serveraddress = credentialKeys(registry)[0]!;
  const config =
    credentials.kind === "basic"
      ? { username: credentials.username, password: credentials.password, serveraddress }
      : { identitytoken: credentials.identityToken, serveraddress };
  return Buffer.from(JSON.stringify(config)).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
}

/** Docker's config.json: in $DOCKER_CONFIG, else in ~/.docker (an empty DOCKER_CONFIG counts as unset). */
export function dockerConfigFile(env: NodeJS.ProcessEnv): string {
  return join(env.DOCKER_CONFIG || join(env.HOME || homedir(), ".docker"), "config.json");
}

function configError(file: string, what: string, hint?: string): VmError {
  return new VmError("REGISTRY_CREDENTIALS_FAILED", `The docker config ${file} ${what}`, {
    hint: hint ?? `Fix ${file}, or point DOCKER_CONFIG at another folder`,
  });
}

async function readDockerConfig(env: NodeJS.ProcessEnv): Promise<DockerConfig | undefined> {
  const file = dockerConfigFile(env);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = systemErrorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw configError(file, `cannot be read (${code ?? String(error)})`, `Check it: ls -l ${file}`);
  }
  const json = parseJson(text, (where) => configError(file, `is not valid JSON${where}`));
  if (!isObject(json)) throw configError(file, "is not a JSON object");
  const field = <T>(name: string, valid: (value: unknown) => value is T, rule: string): T | undefined => {
    const value = json[name];
    if (value === undefined || value === null) return undefined;
    if (!valid(value)) throw configError(file, `has a "${name}" that is not ${rule}`);
    return value;
  };
  return {
    file,
    auths: field("auths", isObject, "an object") ?? {},
    credHelpers: field("credHelpers", isStringMap, "an object of helper names") ?? {},
    credsStore: field("credsStore", (value) => typeof value === "string", "a helper name"),
  };
}

function envError(what: string): VmError {
  return new VmError("REGISTRY_CREDENTIALS_FAILED", `DOCKER_AUTH_CONFIG ${what}`, {
    hint: 'Set it to {"auths": {"<registry>": {"auth": "<base64 of user:password>"}}}, or unset it',
  });
}

function parseEnvAuths(text: string): Entries {
  const json = parseJson(text, (where) => envError(`is not valid JSON${where}`));
  if (!isObject(json) || !isObject(json.auths ?? {})) throw envError('is not {"auths": {...}}');
  return (json.auths ?? {}) as Entries;
}

/** Parses JSON; a failure names where, never what (the text around it may be a secret). */
function parseJson(text: string, invalid: (where: string) => VmError): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const place =
      error instanceof Error ? /\(line \d+ column \d+\)|at position \d+/.exec(error.message) : null;
    throw invalid(place ? ` ${place[0].replace(/^\((.*)\)$/, "at $1")}` : "");
  }
}

/**
 * The entry filed under the first of the keys that has one; with `byHost`, else the first whose host
 * matches once scheme and path are dropped (docker's fallback for config files of older CLIs).
 */
function findEntry(
  entries: Entries,
  keys: string[],
  { byHost = false } = {},
): { key: string; entry: unknown } | undefined {
  for (const key of keys) if (Object.hasOwn(entries, key)) return { key, entry: entries[key] };
  if (!byHost) return undefined;
  const hosts = new Set(keys.filter((key) => !key.includes("://")).map((key) => key.toLowerCase()));
  const key = Object.keys(entries).find((candidate) => hosts.has(hostOfKey(candidate)));
  return key === undefined ? undefined : { key, entry: entries[key] };
}

/** A config key as a host[:port]: scheme and path dropped, lower-cased. */
function hostOfKey(key: string): string {
  const rest = key.includes("://") ? key.slice(key.indexOf("://") + 3) : key;
  return rest.split("/")[0]!.toLowerCase();
}

/**
 * An `auths` entry's credentials: `identitytoken` first (the engine prefers it too), then `auth`
 * (base64 of "user:password", split at the first ':' so a password may hold more), then the `username`
 * and `password` fields; none of them means anonymous.
 */
function entryCredentials(
  entry: unknown,
  source: string,
  bad: (what: string) => VmError,
): Credentials | undefined {
  if (!isObject(entry)) throw bad("is not an object");
  const text = (name: string): string => {
    const value = entry[name];
    if (value === undefined || value === null) return "";
    if (typeof value !== "string") throw bad(`has a "${name}" that is not a string`);
    return value;
  };
  const identityToken = text("identitytoken");
  if (identityToken) return { kind: "token", identityToken, source };
  const auth = text("auth");
  if (auth) {
    const decoded = decodeAuth(auth);
    if (!decoded) throw bad('has an "auth" that is not base64 of "user:password"');
    return { kind: "basic", ...decoded, source };
  }
  const username = text("username");
  return username ? { kind: "basic", username, password: text("password"), source } : undefined;
}

function decodeAuth(auth: string): { username: string; password: string } | undefined {
  const compact = auth.replace(/[\r\n]/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) return undefined;
  const text = Buffer.from(compact, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon <= 0) return undefined;
  // docker trims NUL padding some old tools left after the password.
  return { username: text.slice(0, colon), password: text.slice(colon + 1).replace(/^\0+|\0+$/g, "") };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isStringMap(value: unknown): value is Record<string, string> {
  return isObject(value) && Object.values(value).every((entry) => typeof entry === "string");
}
