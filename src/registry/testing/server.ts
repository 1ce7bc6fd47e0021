// Test support for the registry's unit tests: small servers on 127.0.0.1 playing a registry, a
// throwaway certificate, and transports that never read this machine's certs.d. Not shipped code.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { RegistryTransport } from "../http.ts";

const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** Runs `cleanup` when the test file's tests are over. */
export function onCleanup(cleanup: () => unknown): void {
  cleanups.push(cleanup);
}

export function tempDir(prefix = "vm-registry-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** One request a test server got, its body read whole. */
export interface Seen {
  method: string;
  /** The path without the query. */
  path: string;
  query: URLSearchParams;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type Handler = (req: Seen, res: ServerResponse) => void;

export interface TestServer {
  /** 127.0.0.1:<port>, the registry's host as a reference writes it. */
  host: string;
  origin: string;
  seen: Seen[];
}

/** A server on 127.0.0.1 and a free port: records each request and lets `handler` answer it. */
export async function serve(handler: Handler, tls?: { key: string; cert: string }): Promise<TestServer> {
  const seen: Seen[] = [];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://registry");
      const request: Seen = {
        method: req.method ?? "",
        path: url.pathname,
        query: url.searchParams,
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      seen.push(request);
      handler(request, res);
    });
  };
  const server = tls ? createTlsServer(tls, listener) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onCleanup(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  );
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, origin: `${tls ? "https" : "http"}://${host}`, seen };
}

/** A throwaway self-signed certificate for 127.0.0.1 (which, given as a CA, is its own trust anchor). */
export function selfSigned(): { key: string; cert: string } {
  const dir = tempDir();
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
      ...["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "2"],
      ...["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    ],
    { stdio: "ignore" },
  );
  return {
    key: readFileSync(join(dir, "key.pem"), "utf8"),
    cert: readFileSync(join(dir, "cert.pem"), "utf8"),
  };
}

/** A transport reading CAs from `certsDir` (by default an empty one, not this machine's certs.d). */
export function transport(certsDir: string = tempDir()): RegistryTransport {
  const made = new RegistryTransport(certsDir);
  onCleanup(() => made.close());
  return made;
}
