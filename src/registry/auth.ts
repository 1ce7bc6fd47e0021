import { VmError } from "../errors.ts";
import { parseChallenges, scopeFor, tokenRequestUrl, type Challenge } from "./challenge.ts";
import type { Credentials } from "./credentials.ts";
import { readBody, type HttpResponse, type RegistryTransport } from "./http.ts";
import { isLoopback } from "./reference.ts";

export type Action = "pull" | "push";

/** Whom vm asks for access, and to do what: one repository of one registry. */
export interface AccessRequest {
  registry: string;
  repository: string;
  actions: Action[];
  transport: RegistryTransport;
}

/**
 * The Authorization header that answers a registry's 401: Basic with docker's credentials, or a Bearer
 * token from the registry's token service for this repository's scope (distribution token spec).
 */
export async function answerChallenge(
  res: HttpResponse,
  request: AccessRequest,
  credentials: Credentials | undefined,
): Promise<string> {
  const header = res.headers["www-authenticate"];
  const challenges = parseChallenges(Array.isArray(header) ? header.join(", ") : (header ?? ""));
  const bearer = challenges.find((c) => c.scheme === "bearer");
  const basic = challenges.find((c) => c.scheme === "basic");
  if (bearer) return `Bearer ${await fetchToken(bearer, request, credentials)}`;
  if (basic) {
    if (!credentials || credentials.kind !== "basic") throw accessDenied(401, request, credentials);
    return `Basic ${basicPair(credentials.username, credentials.password)}`;
  }
  throw new VmError("REGISTRY_AUTH_FAILED", `${request.registry} asks for authentication vm does not speak`, {
    hint: "vm answers Basic and Bearer challenges; check the registry's auth configuration",
  });
}

/** A refusal (401/403) said with where the credentials came from and what to run. */
export function accessDenied(
  status: number,
  request: Pick<AccessRequest, "registry" | "repository" | "actions">,
  credentials: Credentials | undefined,
): VmError {
  const doing = request.actions.includes("push") ? "push to" : "pull from";
  const who = credentials ? `with the credentials from ${credentials.source}` : "without credentials";
  return new VmError(
    "REGISTRY_AUTH_FAILED",
    `${request.registry} refused to let vm ${doing} ${request.repository} ${who} (HTTP ${status})`,
    {
      hint: credentials
        ? `Check the account's access to ${request.repository}, or log in again: docker login ${request.registry}`
        : `Log in first: docker login ${request.registry}`,
    },
  );
}

function basicPair(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString("base64");
}

async function fetchToken(
  challenge: Challenge,
  request: AccessRequest,
  credentials: Credentials | undefined,
): Promise<string> {
  const { registry, transport } = request;
  const scopes = [scopeFor(request.repository, request.actions)];
  const href = tokenRequestUrl(challenge, scopes);
  if (!href)
    throw new VmError(
      "REGISTRY_AUTH_FAILED",
      `${registry} asks for a token but names no token service vm can use`,
      {
        hint: "Check the registry's auth configuration (its Bearer realm must be an http(s) URL)",
      },
    );
  const url = new URL(href);
  // Credentials never go in the clear to a token service off this machine.
  if (credentials && url.protocol === "http:" && !isLoopback(url.host))
    throw new VmError(
      "REGISTRY_AUTH_FAILED",
      `${registry} asks for credentials over plain HTTP (${url.origin})`,
      {
        hint: "vm sends credentials only over HTTPS (or to a loopback token service); check the registry's auth realm",
      },
    );
  let res: HttpResponse;
  if (credentials?.kind === "token") {
    // An identity token is an OAuth2 refresh token (docker login with a token-issuing registry).
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: credentials.identityToken,
      service: challenge.params.service ?? "",
      scope: scopes.join(" "),
      client_id: "vm",
    });
    res = await transport.send({
      method: "POST",
      url: new URL(url.origin + url.pathname),
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: Buffer.from(form.toString()),
    });
  } else {
    const headers: Record<string, string> = {};
    if (credentials) headers.Authorization = `Basic ${basicPair(credentials.username, credentials.password)}`;
    res = await transport.send({ method: "GET", url, headers });
  }
  if (res.status === 401 || res.status === 403) {
    res.body.resume();
    throw accessDenied(res.status, request, credentials);
  }
  const text = (await readBody(res, 1024 * 1024)).toString("utf8");
  if (res.status !== 200)
    throw new VmError(
      "REGISTRY_AUTH_FAILED",
      `The token service of ${registry} answered HTTP ${res.status}`,
      {
        hint: `Try again; if it persists, check \`docker login ${registry}\``,
      },
    );
  let body: { token?: unknown; access_token?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = {};
  }
  const token = typeof body.token === "string" ? body.token : body.access_token;
  if (typeof token !== "string" || token === "")
    throw new VmError("REGISTRY_AUTH_FAILED", `The token service of ${registry} gave no token`);
  return token;
}
