import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { VmError } from "../../errors.ts";
import type { Endpoint } from "../engine.ts";

/** Where the Docker engine answers, and why we chose it (shown by `vm doctor` and in errors). */

export interface DiscoveryEnv {
  env: NodeJS.ProcessEnv;
  home?: string;
}

const DEFAULT_SOCKET = "/var/run/docker.sock";

/**
 * Resolves the engine endpoint the way the docker CLI does, as an ordered chain: DOCKER_HOST, then the
 * active docker context (DOCKER_CONTEXT or config.json's currentContext), then the default socket, then
 * the rootless socket. The first that applies wins.
 */
export function discoverEndpoint({ env, home = homedir() }: DiscoveryEnv): Endpoint {
  const configDir = env.DOCKER_CONFIG ?? join(home, ".docker");
  if (env.DOCKER_HOST) return parseHost(env.DOCKER_HOST, "DOCKER_HOST", tlsFromEnv(env, configDir));

  const context = env.DOCKER_CONTEXT ?? readCurrentContext(configDir);
  if (context && context !== "default") return contextEndpoint(configDir, context);

  const rootless = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, "docker.sock") : undefined;
  if (!existsSync(DEFAULT_SOCKET) && rootless && existsSync(rootless)) {
    return { url: `unix://${rootless}`, source: "rootless socket", socketPath: rootless };
  }
  return { url: `unix://${DEFAULT_SOCKET}`, source: "default socket", socketPath: DEFAULT_SOCKET };
}

export function parseHost(url: string, source: string, tls?: Endpoint["tls"]): Endpoint {
  const badHost = (why: string) =>
    new VmError("ENGINE_HOST_INVALID", `${source} '${url}' cannot be used: ${why}`, {
      hint: "Use unix:///path/to/docker.sock or tcp://host:port",
    });
  if (url.startsWith("unix://")) {
    const socketPath = url.slice("unix://".length);
    if (!socketPath) throw badHost("no socket path");
    return { url, source, socketPath };
  }
  if (url.startsWith("tcp://") || url.startsWith("http://") || url.startsWith("https://")) {
    let parsed: URL;
    try {
      parsed = new URL(url.replace(/^tcp:/, tls ? "https:" : "http:"));
    } catch {
      throw badHost("not a valid address");
    }
    const secure = tls !== undefined || parsed.protocol === "https:";
    const port = parsed.port ? Number(parsed.port) : secure ? 2376 : 2375;
    // URL keeps the brackets of an IPv6 literal; the socket layer wants the bare address.
    const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    const endpoint: Endpoint = { url, source, host, port };
    if (tls || parsed.protocol === "https:") endpoint.tls = tls ?? { rejectUnauthorized: true };
    return endpoint;
  }
  if (url.startsWith("/")) return { url: `unix://${url}`, source, socketPath: url };
  if (url.startsWith("ssh://")) {
    throw new VmError(
      "ENGINE_HOST_INVALID",
      `${source} '${url}' cannot be used: vm does not speak ssh:// to engines yet`,
      {
        hint: "Forward the remote engine's socket and point vm at it: ssh -nNT -L /tmp/remote-docker.sock:/var/run/docker.sock HOST &  then  DOCKER_HOST=unix:///tmp/remote-docker.sock vm ...",
      },
    );
  }
  throw badHost("unknown scheme");
}

function tlsFromEnv(env: NodeJS.ProcessEnv, configDir: string): Endpoint["tls"] | undefined {
  const verify =
    env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== "" && env.DOCKER_TLS_VERIFY !== "0";
  const certPath = env.DOCKER_CERT_PATH;
  if (!verify && !certPath) return undefined;
  return { ...readTlsDir(certPath ?? configDir), rejectUnauthorized: verify };
}

function readTlsDir(dir: string): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const read = (name: string) => (existsSync(join(dir, name)) ? readFileSync(join(dir, name)) : undefined);
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  const ca = read("ca.pem");
  const cert = read("cert.pem");
  const key = read("key.pem");
  if (ca) out.ca = ca;
  if (cert) out.cert = cert;
  if (key) out.key = key;
  return out;
}

function readCurrentContext(configDir: string): string | undefined {
  const file = join(configDir, "config.json");
  if (!existsSync(file)) return undefined;
  try {
    const config = JSON.parse(readFileSync(file, "utf8")) as { currentContext?: unknown };
    return typeof config.currentContext === "string" ? config.currentContext : undefined;
  } catch {
    return undefined;
  }
}

function contextEndpoint(configDir: string, name: string): Endpoint {
  // The CLI stores each context under the sha256 of its name.
  const id = createHash("sha256").update(name).digest("hex");
  const metaFile = join(configDir, "contexts", "meta", id, "meta.json");
  let host: unknown;
  let skipVerify: boolean;
  try {
    const meta = JSON.parse(readFileSync(metaFile, "utf8")) as {
      Endpoints?: { docker?: { Host?: unknown; SkipTLSVerify?: unknown } };
    };
    host = meta.Endpoints?.docker?.Host;
    skipVerify = meta.Endpoints?.docker?.SkipTLSVerify === true;
  } catch (cause) {
    throw new VmError(
      "ENGINE_CONTEXT_MISSING",
      `Docker context '${name}' is active but ${metaFile} cannot be read`,
      {
        hint: "Run `docker context use default` or `docker context ls` to pick a valid context",
        cause,
      },
    );
  }
  if (typeof host !== "string") {
    throw new VmError("ENGINE_CONTEXT_MISSING", `Docker context '${name}' has no docker endpoint`, {
      hint: "Run `docker context inspect " + name + "` to see it",
    });
  }
  const tlsDir = join(configDir, "contexts", "tls", id, "docker");
  const tls = existsSync(tlsDir) ? { ...readTlsDir(tlsDir), rejectUnauthorized: !skipVerify } : undefined;
  return parseHost(host, `docker context '${name}'`, tls);
}
