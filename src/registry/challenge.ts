/**
 * What a registry's 401 asks for: the challenges of its WWW-Authenticate header (RFC 7235 §4.1, with
 * RFC 9110 §5.6 for tokens and quoted strings), and the token request a Bearer challenge leads to (the
 * distribution token protocol, distribution/distribution docs/spec/auth/token.md).
 */

/** One challenge: its scheme lower-cased ("basic", "bearer", ...) and its parameters, names lower-cased. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** RFC 9110's tchar: what a token (a scheme, a parameter name, an unquoted value) is made of. */
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * The challenges of a WWW-Authenticate value. One header may hold several (`Bearer realm="...",
 * Basic realm="..."`, as fetch joins repeated headers with ", "); a parameter value is a token or a
 * quoted string, in which a backslash escapes the next character and commas do not separate anything.
 * Scheme and parameter names are case-insensitive, so they come lower-cased; a repeated parameter keeps
 * its first value. Never throws: garbage is skipped up to the next comma, an unterminated quoted value is
 * dropped, and what could be parsed is returned.
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let at = 0;

  const skip = (chars: string) => {
    while (at < header.length && chars.includes(header[at]!)) at++;
  };
  const token = (): string => {
    const start = at;
    while (at < header.length && TCHAR.test(header[at]!)) at++;
    return header.slice(start, at);
  };
  /** A quoted string from its opening quote; undefined (and the rest consumed) when it never closes. */
  const quoted = (): string | undefined => {
    let value = "";
    for (at++; at < header.length; at++) {
      const char = header[at]!;
      if (char === '"') {
        at++;
        return value;
      }
      if (char === "\\") at++;
      value += header[at] ?? "";
    }
    return undefined;
  };
  /** Skips to the next comma outside quotes: past what cannot be parsed. */
  const skipGarbage = () => {
    while (at < header.length && header[at] !== ",") {
      if (header[at] === '"') quoted();
      else at++;
    }
  };
  /** Whether a token just read is a parameter's name: '=' follows, perhaps after spaces. */
  const isParamName = (): boolean => {
    const start = at;
    skip(" \t");
    const yes = header[at] === "=";
    at = start;
    return yes;
  };

  while (at < header.length) {
    skip(" \t,");
    if (at >= header.length) break;
    const scheme = token();
    if (scheme === "" || isParamName()) {
      skipGarbage();
      continue;
    }
    const params = new Map<string, string>();
    for (;;) {
      skip(" \t");
      if (header[at] === ",") {
        at++;
        continue;
      }
      if (at >= header.length) break;
      const start = at;
      const name = token();
      if (name === "") {
        skipGarbage();
        continue;
      }
      if (!isParamName()) {
        // A token with no '=' after it begins the next challenge (or is a token68, which registries never send).
        at = start;
        break;
      }
      skip(" \t");
      at++; // the '='
      skip(" \t");
      const value = header[at] === '"' ? quoted() : token();
      const key = name.toLowerCase();
      if (value !== undefined && !params.has(key)) params.set(key, value);
      skip(" \t");
      if (at < header.length && header[at] !== ",") skipGarbage();
    }
    // Through a Map: a parameter called "__proto__" or "constructor" is just a parameter.
    challenges.push({ scheme: scheme.toLowerCase(), params: Object.fromEntries(params) });
  }
  return challenges;
}

/**
 * The URL to ask a Bearer challenge's token service for a token: its realm, with `service` when the
 * challenge names one and a `scope` parameter per scope (the token spec's GET form, as the docker
 * engine sends it), appended to whatever query the realm has of its own. Undefined when the challenge
 * has no realm, or one that is not an http(s) URL.
 */
export function tokenRequestUrl(challenge: Challenge, scopes: string[]): string | undefined {
  const realm = challenge.params.realm;
  if (!realm) return undefined;
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    return undefined;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return undefined;
  const query = new URLSearchParams();
  if (challenge.params.service !== undefined) query.append("service", challenge.params.service);
  for (const scope of scopes) query.append("scope", scope);
  const added = query.toString();
  // Appended as text rather than through url.searchParams, which would re-encode the realm's own query.
  if (added) url.search = url.search ? `${url.search}&${added}` : added;
  return url.href;
}

/** A repository scope of the token spec: `repository:<name>:<actions>`, e.g. `repository:team/vibe:pull,push`. */
export function scopeFor(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${actions.join(",")}`;
}
