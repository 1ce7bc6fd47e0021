/**
 * Which files may hold a secret, by path, and what their content must show: the rules of the export's
 * secret scan (secrets.ts reads the image and applies them). Sources: where each tool documents (or is
 * seen to keep) its login — the AI CLIs (Claude Code, Codex, Gemini CLI, Copilot), gh, glab, cargo, gem,
 * Hugging Face, Terraform, Vault, the cloud CLIs — and the file rules gitleaks and trufflehog ship.
 * Beyond these, any small text file under a home folder, /root, /etc or /workspace is searched for
 * self-identifying tokens (secret-tokens.ts).
 */

import { redactValue } from "./tokens.ts";

const PRIVATE_KEY = "private key";
const CLOUD = "cloud credentials";
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
const ENV_SECRET =
  /^[ \t]*(?:export[ \t]+)?[\w.-]*(?:token|secret|passw(?:or)?d|api_?key|access_key|private_key|credential)[\w.-]*[ \t]*=[ \t]*(?:"[^"\n]+"|'[^'\n]+'|[^\s"'#])/im;
const ENV_TEMPLATES = new Set(["example", "sample", "template", "dist", "defaults"]);

export interface Rule {
  kind: string;
  /** Decides on the content (latin1) of a file no larger than maxFileBytes; a string is the secret itself
   * (for a redacted preview). */
  found: (text: string, size: number) => boolean | string;
  /** The rule applies only to a path that ends like this, e.g. `/.aws/credentials`. */
  suffix?: string;
}

const always = (): boolean => true;
const nonEmpty = (_text: string, size: number): boolean => size > 0;
/** A file that is the secret (a token file): its first line. */
const tokenFile = (text: string, size: number): boolean | string =>
  size > 0 && (/^\s*(\S{8,200})\s*$/m.exec(text)?.[1] ?? true);
const contains =
  (...needles: string[]) =>
  (text: string): boolean =>
    needles.some((needle) => text.includes(needle));
const matches =
  (pattern: RegExp) =>
  (text: string): boolean =>
    pattern.test(text);

const privateKey: Rule = { kind: PRIVATE_KEY, found: always };
const pem: Rule = { kind: PRIVATE_KEY, found: matches(PEM_PRIVATE_KEY) };
const envFile: Rule = { kind: "token in .env file", found: matches(ENV_SECRET) };
const history: Rule = { kind: "shell history", found: nonEmpty };
const netrc: Rule = { kind: "netrc credentials", found: contains("password") };
const at = (suffix: string, kind: string, found: Rule["found"] = always): Rule => ({ kind, found, suffix });
const each = (names: string[], rule: Rule): [string, Rule][] => names.map((name) => [name, rule]);
/** A JSON, YAML, TOML or ini value under one of these keys that is not empty: the value. */
const keyWithValue = (...keys: string[]) => {
  const pattern = new RegExp(`["']?(?:${keys.join("|")})["']?\\s*[:=]\\s*["']?([^\\s"',}{\\]\\[]{8,})`);
  return (text: string): boolean | string => pattern.exec(text)?.[1] ?? false;
};

const RULES: [string, Rule][] = [
  ...each(["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"], privateKey),
  ...each([".bash_history", ".zsh_history", ".ash_history", ".sh_history", ".histfile"], history),
  ...each([".python_history", ".psql_history", ".mysql_history", ".node_repl_history"], history),
  ...each([".netrc", "_netrc"], netrc),
  [".npmrc", { kind: "npm credentials", found: contains("_auth", "_password") }],
  [".yarnrc.yml", { kind: "npm credentials", found: keyWithValue("npmAuthToken", "npmAuthIdent") }],
  [".pypirc", { kind: "PyPI credentials", found: contains("password") }],
  [
    ".git-credentials",
    { kind: "git credentials", found: (t) => /:\/\/[^:/\s]+:([^@\s]+)@/.exec(t)?.[1] ?? t.trim().length > 0 },
  ],
  [
    ".pgpass",
    {
      kind: "PostgreSQL password file",
      found: (t) => /^[^#\n:]*:[^:\n]*:[^:\n]*:[^:\n]*:(\S+)$/m.exec(t)?.[1] ?? false,
    },
  ],
  [".my.cnf", { kind: "MySQL credentials", found: keyWithValue("password") }],
  [".vault-token", { kind: "Vault token", found: tokenFile }],
  [".databrickscfg", { kind: "Databricks token", found: keyWithValue("token") }],
  [".sentryclirc", { kind: "Sentry token", found: keyWithValue("token") }],
  [".s3cfg", { kind: CLOUD, found: keyWithValue("secret_key") }],
  [".boto", { kind: CLOUD, found: keyWithValue("aws_secret_access_key", "gs_secret_access_key") }],
  // The AI CLIs' logins.
  [
    ".credentials.json",
    at(
      "/.claude/.credentials.json",
      "Claude Code login",
      keyWithValue("accessToken", "refreshToken", "apiKey"),
    ),
  ],
  [".claude.json", { kind: "Claude Code API key", found: keyWithValue("primaryApiKey") }],
  [
    "auth.json",
    at("/.codex/auth.json", "Codex login", keyWithValue("OPENAI_API_KEY", "access_token", "refresh_token")),
  ],
  [
    "oauth_creds.json",
    at("/.gemini/oauth_creds.json", "Gemini CLI login", keyWithValue("access_token", "refresh_token")),
  ],
  ["hosts.json", at("/github-copilot/hosts.json", "GitHub Copilot login", keyWithValue("oauth_token"))],
  ["apps.json", at("/github-copilot/apps.json", "GitHub Copilot login", keyWithValue("oauth_token"))],
  // Forges, package registries and infrastructure tools.
  ["hosts.yml", at("/.config/gh/hosts.yml", "GitHub CLI login", keyWithValue("oauth_token"))],
  ["hub", at("/.config/hub", "GitHub CLI login", keyWithValue("oauth_token"))],
  ["config.yml", at("/.config/glab-cli/config.yml", "GitLab CLI login", keyWithValue("token"))],
  ["credentials.toml", at("/.cargo/credentials.toml", "cargo registry token", keyWithValue("token"))],
  ["credentials", at("/.cargo/credentials", "cargo registry token", keyWithValue("token"))],
  [
    "credentials",
    at("/.gem/credentials", "RubyGems API key", keyWithValue(":rubygems_api_key", "rubygems_api_key")),
  ],
  ["token", at("/huggingface/token", "Hugging Face token", tokenFile)],
  ["stored_tokens", at("/huggingface/stored_tokens", "Hugging Face token", nonEmpty)],
  [
    "credentials.tfrc.json",
    at("/.terraform.d/credentials.tfrc.json", "Terraform token", keyWithValue("token")),
  ],
  [
    "credentials.json",
    at("/.pulumi/credentials.json", "Pulumi token", keyWithValue("accessTokens", "accessToken")),
  ],
  ["auth.json", at("/.composer/auth.json", "Composer credentials", keyWithValue("password", "token"))],
  ["ngrok.yml", { kind: "ngrok token", found: keyWithValue("authtoken") }],
  [
    "rclone.conf",
    at("/rclone/rclone.conf", "rclone credentials", keyWithValue("pass", "token", "secret_access_key")),
  ],
  [
    "settings.xml",
    at(
      "/.m2/settings.xml",
      "Maven credentials",
      (t) => /<password>([^<\s]{4,})<\/password>/.exec(t)?.[1] ?? false,
    ),
  ],
  [
    "gradle.properties",
    at(
      "/.gradle/gradle.properties",
      "Gradle credentials",
      matches(/(?:password|token|secret)\w*\s*=\s*\S{8,}/i),
    ),
  ],
  [
    "default.toml",
    at("/.wrangler/config/default.toml", "Cloudflare login", keyWithValue("oauth_token", "api_token")),
  ],
  ["config.yaml", at("/doctl/config.yaml", "DigitalOcean token", keyWithValue("access-token"))],
  ["config.yml", at("/.fly/config.yml", "Fly.io token", keyWithValue("access_token"))],
  // Cloud and container tools.
  ["application_default_credentials.json", { kind: CLOUD, found: always }],
  ["credentials", at("/.aws/credentials", CLOUD)],
  ["credentials.db", at("/.config/gcloud/credentials.db", CLOUD)],
  ["access_tokens.db", at("/.config/gcloud/access_tokens.db", CLOUD)],
  ["accessTokens.json", at("/.azure/accessTokens.json", CLOUD)],
  ["msal_token_cache.json", at("/.azure/msal_token_cache.json", CLOUD, nonEmpty)],
  ["config.json", at("/.docker/config.json", "docker credentials", keyWithValue("auth", "identitytoken"))],
  ["config", at("/.kube/config", "kubernetes credentials", keyWithValue("token", "client-key-data"))],
];
const BY_NAME = new Map<string, Rule[]>();
for (const [name, rule] of RULES) BY_NAME.set(name, [...(BY_NAME.get(name) ?? []), rule]);
const BY_EXTENSION = new Map(Object.entries({ pem, key: pem, p12: privateKey, pfx: privateKey }));

/** The rule for a file that may hold a secret, or undefined for the (vast) rest. Runs once per file. */
export function ruleFor(path: string): Rule | undefined {
  const name = path.slice(path.lastIndexOf("/") + 1);
  if (name.startsWith(".wh.")) return undefined; // a layer's deletion marker, not a file
  const rules = BY_NAME.get(name);
  if (rules !== undefined) {
    const full = `/${path}`;
    const rule = rules.find((r) => r.suffix === undefined || full.endsWith(r.suffix));
    if (rule !== undefined) return rule;
  }
  if (name === ".env" || (name.startsWith(".env.") && !ENV_TEMPLATES.has(name.slice(5)))) return envFile;
  const dot = name.lastIndexOf(".");
  return dot < 0 ? undefined : BY_EXTENSION.get(name.slice(dot + 1).toLowerCase());
}

/** A file too big to read: whether its path alone proves the rule (a big history is still a history; a
 * 280 KB certifi/cacert.pem is a certificate bundle, not a private key). */
export function provenByPath(rule: Rule): boolean {
  return rule.found === always || rule.found === nonEmpty || rule.found === tokenFile;
}

/** The secrets a candidate file's content (latin1) shows, its path rule's (with a preview when the rule
 * knows the value) and PEM keys anywhere. */
export function kindsFound(rule: Rule, text: string, size: number): { kind: string; preview?: string }[] {
  const found: { kind: string; preview?: string }[] = [];
  const value = rule.found(text, size);
  if (value !== false)
    found.push({ kind: rule.kind, ...(typeof value === "string" ? { preview: redactValue(value) } : {}) });
  if (rule !== pem && PEM_PRIVATE_KEY.test(text)) found.push({ kind: PRIVATE_KEY });
  return found;
}

/** Folders whose files are searched for self-identifying tokens: where people keep what they typed. */
const TEXT_ROOTS = /^(?:root|home\/[^/]+|etc|workspace)\//;
/** Inside those, what tools download or generate (package caches, toolchains, libraries), not what people
 * write: searching them costs time and finds only other projects' test fixtures. */
const GENERATED =
  /\/(?:node_modules|\.npm|\.cache|\.rustup|\.cargo\/registry|\.cargo\/git|site-packages|dist-packages|\.local\/lib|\.local\/share\/(?:pnpm|nvim|uv)|\.local\/pipx|\.nvm|\.pyenv|\.rbenv|\.sdkman|\.bun|\.deno|\.vscode-server|\.cursor-server|go\/pkg|\.m2\/repository|\.gradle\/(?:caches|wrapper)|\.git\/objects)\//;

/** Whether a file with no path rule should still be searched for tokens. */
export function searchForTokens(path: string): boolean {
  return TEXT_ROOTS.test(path) && !GENERATED.test(`/${path}`);
}
