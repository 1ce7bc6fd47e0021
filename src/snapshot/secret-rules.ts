/**
 * Which files may hold a secret, by path, and what their content must show: the rules of the export's
 * secret scan (secrets.ts reads the image and applies them).
 */

const PRIVATE_KEY = "private key";
const CLOUD = "cloud credentials";
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
const AWS_ACCESS_KEY = /AKIA[0-9A-Z]{16}/;
const ENV_SECRET =
  /^[ \t]*(?:export[ \t]+)?[\w.-]*(?:token|secret|passw(?:or)?d|api_?key|access_key|private_key|credential)[\w.-]*[ \t]*=[ \t]*(?:"[^"\n]+"|'[^'\n]+'|[^\s"'#])/im;
const ENV_TEMPLATES = new Set(["example", "sample", "template"]);

export interface Rule {
  kind: string;
  /** Decides on the content (latin1) of a file no larger than maxFileBytes. */
  found: (text: string, size: number) => boolean;
  /** The rule applies only to a path that ends like this, e.g. `/.aws/credentials`. */
  suffix?: string;
}

const always = (): boolean => true;
const nonEmpty = (_text: string, size: number): boolean => size > 0;
const contains =
  (...needles: string[]) =>
  (text: string): boolean =>
    needles.some((needle) => text.includes(needle));

const privateKey: Rule = { kind: PRIVATE_KEY, found: always };
const pem: Rule = { kind: PRIVATE_KEY, found: (text) => PEM_PRIVATE_KEY.test(text) };
const envFile: Rule = { kind: "token in .env file", found: (text) => ENV_SECRET.test(text) };
const history: Rule = { kind: "shell history", found: nonEmpty };
const netrc: Rule = { kind: "netrc credentials", found: contains("password") };
const at = (suffix: string, kind: string, found: Rule["found"] = always): Rule => ({ kind, found, suffix });
const each = (names: string[], rule: Rule): [string, Rule][] => names.map((name) => [name, rule]);

const BY_NAME = new Map<string, Rule>([
  ...each(["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"], privateKey),
  ...each([".bash_history", ".zsh_history", ".ash_history", ".sh_history"], history),
  ...each([".python_history", ".psql_history", ".mysql_history"], history),
  ...each([".netrc", "_netrc"], netrc),
  [".npmrc", { kind: "npm credentials", found: contains("_auth", "_password") }],
  [".pypirc", { kind: "PyPI credentials", found: contains("password") }],
  [".git-credentials", { kind: "git credentials", found: nonEmpty }],
  ["application_default_credentials.json", { kind: CLOUD, found: always }],
  ["credentials", at("/.aws/credentials", CLOUD)],
  ["credentials.db", at("/.config/gcloud/credentials.db", CLOUD)],
  ["accessTokens.json", at("/.azure/accessTokens.json", CLOUD)],
  ["config.json", at("/.docker/config.json", "docker credentials", contains('"auth"'))],
  ["config", at("/.kube/config", "kubernetes credentials", contains("token:", "client-key-data"))],
]);
const BY_EXTENSION = new Map(Object.entries({ pem, key: pem, p12: privateKey, pfx: privateKey }));

/** The rule for a file that may hold a secret, or undefined for the (vast) rest. Runs once per file. */
export function ruleFor(path: string): Rule | undefined {
  const name = path.slice(path.lastIndexOf("/") + 1);
  if (name.startsWith(".wh.")) return undefined; // a layer's deletion marker, not a file
  const rule = BY_NAME.get(name);
  if (rule !== undefined) {
    return rule.suffix === undefined || `/${path}`.endsWith(rule.suffix) ? rule : undefined;
  }
  if (name === ".env" || (name.startsWith(".env.") && !ENV_TEMPLATES.has(name.slice(5)))) return envFile;
  const dot = name.lastIndexOf(".");
  return dot < 0 ? undefined : BY_EXTENSION.get(name.slice(dot + 1).toLowerCase());
}

/** A file too big to read: whether its path alone proves the rule (a big history is still a history; a
 * 280 KB certifi/cacert.pem is a certificate bundle, not a private key). */
export function provenByPath(rule: Rule): boolean {
  return rule.found === always || rule.found === nonEmpty;
}

/** The kinds of secret a candidate file's content (latin1) shows. */
export function kindsFound(rule: Rule, text: string, size: number): string[] {
  const kinds: string[] = [];
  if (rule.found(text, size)) kinds.push(rule.kind);
  if (PEM_PRIVATE_KEY.test(text)) kinds.push(PRIVATE_KEY);
  if (AWS_ACCESS_KEY.test(text)) kinds.push(CLOUD);
  return kinds;
}
