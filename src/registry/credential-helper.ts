import { spawn } from "node:child_process";
import { VmError, systemErrorCode } from "../errors.ts";
import type { Credentials } from "./credentials.ts";

// The docker-credential-helpers protocol: `docker-credential-<name> get`, the server URL on stdin, a
// {"Username", "Secret"} JSON answer on stdout (or "credentials not found in native keychain").

const HELPER_OUTPUT_LIMIT = 1024 * 1024;
/** What a helper prints (on stdout, exiting 1) when it holds nothing for the server. */
const NOT_FOUND_MESSAGE = "credentials not found in native keychain";
/** The Username with which a helper says that Secret is an identity token. */
const TOKEN_USERNAME = "<token>";

interface HelperAnswer {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Why it never ran or was stopped: ENOENT, EACCES, "timeout", "too much output", a signal. */
  failure?: string;
}

/** A credential helper config.json names, and where. */
export interface Helper {
  name: string;
  field: "credHelpers" | "credsStore";
  file: string;
}

/** Asks `docker-credential-<name> get` for the server's credentials, per the docker-credential-helpers protocol. */
export async function askHelper(
  { name, field, file }: Helper,
  serverUrl: string,
  registry: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  const source = `${field} (${program})`;
  const fail = (what: string, hint?: string) =>
    new VmError(
      "REGISTRY_CREDENTIALS_FAILED",
      `The credential helper ${program} (${field} in ${file}) ${what}`,
      {
        hint:
          hint ?? `Log in again: docker login ${registry}; if that fails too, check that ${program} works`,
      },
    );

  const answer = await runHelper(program, serverUrl, env, timeoutMs);
  if (answer.failure === "ENOENT")
    throw fail(
      "is not on PATH",
      `Install ${program}, or remove "${field}" from ${file} and run: docker login ${registry}`,
    );
  if (answer.failure === "timeout") throw fail(`did not answer for ${registry} within ${timeoutMs / 1000} s`);
  if (answer.failure) throw fail(`could not be run for ${registry} (${answer.failure})`);
  if (answer.exitCode !== 0) {
    // Helpers print their errors on stdout (docker-credential-helpers' Serve); some write to stderr instead.
    if ([answer.stdout, answer.stderr].some((text) => text.trim() === NOT_FOUND_MESSAGE)) return undefined;
    const line = firstLine(answer.stderr) || firstLine(answer.stdout) || `exit code ${answer.exitCode}`;
    throw fail(`failed for ${registry}: ${line}`);
  }

  let reply: unknown;
  try {
    reply = JSON.parse(answer.stdout);
  } catch {
    reply = undefined;
  }
  // Never the reply itself in the message: it holds the secret.
  if (!isObject(reply) || typeof reply.Secret !== "string" || typeof (reply.Username ?? "") !== "string")
    throw fail(`answered for ${registry} with something other than {"Username", "Secret"} JSON`);
  const username = (reply.Username as string | undefined) ?? "";
  if (!reply.Secret) return undefined;
  if (username === TOKEN_USERNAME) return { kind: "token", identityToken: reply.Secret, source };
  return { kind: "basic", username, password: reply.Secret, source };
}

/**
 * Runs a helper with `get` and the server URL on stdin, as docker does. On timeout it is killed and not
 * waited for: a process it started (a shell script's children) may hold its output open much longer.
 */
function runHelper(
  program: string,
  input: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<HelperAnswer> {
  return new Promise((resolve) => {
    const child = spawn(program, ["get"], { env, stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (answer: HelperAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(answer);
    };
    const stop = (failure: string) => {
      // SIGKILL: a helper stuck on a keychain prompt may ignore SIGTERM, and vm is waiting.
      child.kill("SIGKILL");
      child.stdout.destroy();
      child.stderr.destroy();
      finish({ exitCode: null, stdout: "", stderr: "", failure });
    };
    const timer = setTimeout(() => stop("timeout"), timeoutMs);
    const collect = (chunks: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > HELPER_OUTPUT_LIMIT) stop("too much output");
      else chunks.push(chunk);
    };
    child.stdout.on("data", collect(stdout));
    child.stderr.on("data", collect(stderr));
    child.on("error", (error) =>
      finish({ exitCode: null, stdout: "", stderr: "", failure: systemErrorCode(error) ?? error.message }),
    );
    child.on("close", (exitCode, signal) =>
      finish({
        exitCode,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
        ...(signal ? { failure: `killed by ${signal}` } : {}),
      }),
    );
    // A helper that exits without reading its input must not crash vm with EPIPE.
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
}

function firstLine(text: string): string {
  const line = text.split("\n").find((candidate) => candidate.trim() !== "") ?? "";
  return line.trim().slice(0, 200);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
