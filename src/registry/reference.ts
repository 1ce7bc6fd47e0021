import { VmError } from "../errors.ts";

/**
 * Image references as docker reads them: distribution/reference's "normalized named" grammar
 * (github.com/distribution/reference, regexp.go and normalize.go, v0.6), so that a name means in vm what
 * it means to `docker pull`.
 */

/** An image in a registry: where it lives, and which of its manifests (tag, digest, or both). */
export interface RegistryRef {
  /** "docker.io" for Docker Hub, else host[:port] as written, its host lower-cased. */
  registry: string;
  /** The path in the registry: "library/ubuntu" for a one-component Docker Hub name. */
  repository: string;
  /** "latest" when the text names neither tag nor digest. */
  tag?: string;
  /** sha256:<64 lowercase hex digits>. */
  digest?: string;
}

/** Docker Hub as a reference's registry. */
export const DOCKER_HUB = "docker.io";

/** The key Docker Hub's credentials are stored under in config.json (docker/cli's configfile.authConfigKey). */
export const DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";

const EXAMPLE = "registry.example.com/team/vibe:2024-10";

/** One path component: lowercase alphanumerics, joined by '.', '_', '__' or one or more '-'. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
/** A host: dot-separated labels of letters, digits and inner '-', or an IPv6 literal in brackets; then a port. */
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const TAG = /^\w[\w.-]{0,127}$/;
/** Any digest the grammar accepts; only sha256 is one vm can check. */
const ANY_DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;
/** What `docker pull` refuses as a name because it is an image ID. */
const IMAGE_ID = /^[a-f0-9]{64}$/;
/** The longest repository path (distribution/reference's RepositoryNameTotalLengthMax; the domain is not counted). */
const MAX_REPOSITORY_LENGTH = 255;

function invalid(text: string, why: string): VmError {
  return new VmError("REGISTRY_REF_INVALID", `'${text}' is not a valid image reference: ${why}`, {
    hint: `Write it as registry/repository:tag, e.g. ${EXAMPLE} (or ...@sha256:<digest>)`,
  });
}

/**
 * Whether the first component of a name with a '/' is a registry host, docker's rule: it contains '.' or
 * ':' (a domain, an IP address, a port, an IPv6 literal) or is "localhost". Docker also takes a first
 * component with an uppercase letter for a host; vm does not, so `Team/vibe` is refused as not lowercase
 * instead of being looked up as a host called "Team".
 */
function isRegistryHost(component: string): boolean {
  return component.includes(".") || component.includes(":") || component === "localhost";
}

/**
 * Parses an image reference the way `docker pull` does. A first component that is a registry host (see
 * looksLikeRegistryRef) names the registry, else the image is on Docker Hub, where a one-component name is
 * an official image under "library/". `index.docker.io` is Docker Hub's old name. The tag defaults to
 * "latest" only when there is no digest; `name:tag@digest` keeps both (the registry is asked for the digest).
 * Throws REGISTRY_REF_INVALID saying what is wrong.
 */
export function parseRegistryRef(text: string): RegistryRef {
  if (text === "") throw invalid(text, "it is empty");
  if (IMAGE_ID.test(text))
    throw invalid(
      text,
      "a 64-character hex string is an image ID, not a name (prefix a digest with @sha256:)",
    );

  const at = text.indexOf("@");
  const digest = at === -1 ? undefined : text.slice(at + 1);
  const named = at === -1 ? text : text.slice(0, at);
  if (digest !== undefined && !SHA256_DIGEST.test(digest))
    throw invalid(
      text,
      ANY_DIGEST.test(digest) && !digest.startsWith("sha256:")
        ? `only sha256 digests are supported, not '${digest.split(":")[0]}'`
        : `the digest '${digest}' is not sha256: followed by 64 lowercase hex digits`,
    );

  const colon = named.lastIndexOf(":");
  const hasTag = colon > named.lastIndexOf("/");
  const name = hasTag ? named.slice(0, colon) : named;
  const tag = hasTag ? named.slice(colon + 1) : undefined;
  if (tag !== undefined && !TAG.test(tag))
    throw invalid(
      text,
      `the tag '${tag}' is not 1 to 128 letters, digits, '_', '.' and '-' (not starting with '.' or '-')`,
    );

  if (name === "") throw invalid(text, "it names no repository");
  const slash = name.indexOf("/");
  const first = slash === -1 ? "" : name.slice(0, slash);
  let registry = DOCKER_HUB;
  let repository = name;
  if (slash !== -1 && isRegistryHost(first)) {
    if (!DOMAIN.test(first)) throw invalid(text, `'${first}' is not a registry host[:port]`);
    // Host names are case-insensitive; one spelling keeps credential keys and messages the same.
    registry = first.toLowerCase() === "index.docker.io" ? DOCKER_HUB : first.toLowerCase();
    repository = name.slice(slash + 1);
  }
  if (registry === DOCKER_HUB && !repository.includes("/")) repository = `library/${repository}`;

  for (const component of repository.split("/")) {
    if (PATH_COMPONENT.test(component)) continue;
    if (PATH_COMPONENT.test(component.toLowerCase()))
      throw invalid(text, `the repository '${repository}' must be lowercase`);
    throw invalid(
      text,
      component === ""
        ? `the repository '${repository}' has an empty path component`
        : `'${component}' in the repository is not lowercase letters and digits separated by '.', '_', '__' or '-'`,
    );
  }
  if (repository.length > MAX_REPOSITORY_LENGTH)
    throw invalid(text, `the repository is longer than ${MAX_REPOSITORY_LENGTH} characters`);

  const ref: RegistryRef = { registry, repository };
  if (tag !== undefined || digest === undefined) ref.tag = tag ?? "latest";
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** The canonical text of a reference: `registry/repository[:tag][@digest]`, Docker Hub as `docker.io/...`. */
export function formatRef(ref: RegistryRef): string {
  const tag = ref.tag === undefined ? "" : `:${ref.tag}`;
  const digest = ref.digest === undefined ? "" : `@${ref.digest}`;
  return `${ref.registry}/${ref.repository}${tag}${digest}`;
}

/**
 * The origin the registry's HTTP API answers on: Docker Hub's API is registry-1.docker.io (docker.io
 * only names it), any other registry answers on its own host[:port].
 */
export function apiOrigin(registry: string, scheme: "https" | "http" = "https"): string {
  return `${scheme}://${registry === DOCKER_HUB ? "registry-1.docker.io" : registry}`;
}

/**
 * Whether a registry is on this machine: localhost, 127.0.0.0/8 or ::1 (also as an IPv4-mapped address),
 * with or without a port. These are the registries the Docker Engine talks plain HTTP to by default.
 */
export function isLoopback(registry: string): boolean {
  let host: string;
  try {
    // URL normalizes what can be written several ways: case, IPv6 zeros, IPv4 short forms.
    host = new URL(`http://${registry}/`).hostname;
  } catch {
    return false;
  }
  return (
    host === "localhost" ||
    /^127\.\d+\.\d+\.\d+$/.test(host) ||
    host === "[::1]" ||
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host)
  );
}

/**
 * Whether the text after '@' in `vm.box: "@..."` names an image in a registry rather than a global
 * snapshot: it has a '/' and its first component is a registry host (contains '.' or ':', or is
 * "localhost"). `@vibe-base` stays a snapshot; `@ghcr.io/acme/vibe:2024-10` and
 * `@127.0.0.1:5000/team/vibe:1` are registry references. Docker Hub images need their host written out
 * (`@docker.io/acme/vibe`), since `acme/vibe` could not be told from a snapshot name.
 */
export function looksLikeRegistryRef(text: string): boolean {
  const slash = text.indexOf("/");
  return slash > 0 && isRegistryHost(text.slice(0, slash));
}

/**
 * The keys config.json (and credential helpers) may file a registry's credentials under, in the order
 * they are tried; the first is the one the docker CLI uses and passes to credential helpers.
 *
 * Docker Hub: docker uses only `https://index.docker.io/v1/` (configfile.getAuthConfigKey); the bare host
 * names after it are what other tools that share the file write (podman, skopeo: `docker.io`).
 * Any other registry: docker looks up `host[:port]`, then any `auths` key whose host is that once its
 * scheme and path are dropped (credentials.ConvertToHostname, for files older tools wrote); the URL forms
 * listed here are the common ones, in a fixed order where docker's map walk has none.
 */
export function credentialKeys(registry: string): string[] {
  if (registry === DOCKER_HUB)
    return [DOCKER_HUB_AUTH_KEY, "index.docker.io", "docker.io", "registry-1.docker.io"];
  const urls = (scheme: string) => ["", "/", "/v1/", "/v2/"].map((path) => `${scheme}://${registry}${path}`);
  return [registry, ...urls("https"), ...urls("http")];
}
