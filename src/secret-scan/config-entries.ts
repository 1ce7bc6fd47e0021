/**
 * Secrets an image carries outside its files: in its config's `Env` and `Labels`, and in the history's
 * `created_by` lines, where the classic builder writes the build args a `RUN` step used (`|1 NPM_TOKEN=…
 * /bin/sh -c …`). A value counts when it has a self-identifying token format (secret-tokens.ts), or when its
 * name says secret (`*_TOKEN`, `*_PASSWORD`, `API_KEY`, …) and the value looks like one rather than a path,
 * a number, a placeholder or a reference to another variable.
 */
import { entropy, findTokens, redactValue } from "./tokens.ts";

export interface ConfigFinding {
  /** `config: Env GITHUB_TOKEN`, `config: Label api.key`, `history: step 4`. */
  path: string;
  kind: string;
  preview: string;
}

const SECRET_NAME =
  /(?:^|[_.-])(?:TOKEN|SECRET|PASSWORD|PASSWD|PASS|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|AUTH_?TOKEN|CREDENTIALS?)(?:$|[_.-])/i;
/** Names that say secret but are known to hold none: where to find a file, or whether to use one. */
const HARMLESS_NAME = /(?:_FILE|_PATH|_DIR|_URL|_HOST|_PORT|_USER|_USERNAME|_ENABLED|_HELPER|_COMMAND)$/i;
const PLACEHOLDER =
  /^(?:\$|%|<|\{\{)|changeme|example|placeholder|your[_-]|x{4,}|\*{3,}|^(?:true|false|none|null)$/i;

/** Whether `value`, given to a variable called `name`, looks like a secret. */
export function secretByName(name: string, value: string): boolean {
  if (!SECRET_NAME.test(name) || HARMLESS_NAME.test(name)) return false;
  if (value.length < 8 || PLACEHOLDER.test(value)) return false;
  if (value.startsWith("/") || /^[\d.:-]+$/.test(value)) return false; // a path, a number, a version
  return entropy(value) >= 2.5;
}

function findingsOf(where: string, name: string | null, value: string): ConfigFinding[] {
  const found = findTokens(value).map((t) => ({ path: where, kind: t.kind, preview: t.preview }));
  if (found.length === 0 && name !== null && secretByName(name, value))
    found.push({ path: where, kind: `secret in ${name}`, preview: redactValue(value) });
  return found;
}

/** The classic builder's `|2 A=1 B=2 /bin/sh -c …` prefix: the build args of a RUN step. */
function buildArgsOf(line: string): [string, string][] {
  const head = /^\|(\d+) /.exec(line);
  if (!head) return [];
  const args: [string, string][] = [];
  let rest = line.slice(head[0].length);
  for (let i = 0; i < Number(head[1]); i++) {
    const arg = /^([A-Za-z_][\w.-]*)=(\S*) ?/.exec(rest);
    if (!arg) break;
    args.push([arg[1]!, arg[2]!]);
    rest = rest.slice(arg[0].length);
  }
  return args;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Whether a JSON document of the save stream is an image config (not a manifest or an index). */
export function isImageConfig(doc: unknown): doc is Record<string, unknown> {
  return isObject(doc) && isObject(doc.rootfs) && (isObject(doc.config) || Array.isArray(doc.history));
}

/** Every secret an image config shows in its environment, labels and history. */
export function scanImageConfig(doc: Record<string, unknown>): ConfigFinding[] {
  const findings: ConfigFinding[] = [];
  const config = isObject(doc.config) ? doc.config : {};
  for (const entry of Array.isArray(config.Env) ? config.Env : []) {
    if (typeof entry !== "string") continue;
    const at = entry.indexOf("=");
    const name = at < 0 ? entry : entry.slice(0, at);
    findings.push(...findingsOf(`config: Env ${name}`, name, at < 0 ? "" : entry.slice(at + 1)));
  }
  for (const [name, value] of Object.entries(isObject(config.Labels) ? config.Labels : {}))
    if (typeof value === "string") findings.push(...findingsOf(`config: Label ${name}`, name, value));
  const history = Array.isArray(doc.history) ? doc.history : [];
  history.forEach((step, i) => {
    const line = isObject(step) && typeof step.created_by === "string" ? step.created_by : "";
    const where = `history: step ${i + 1}`;
    findings.push(...findingsOf(where, null, line));
    // A build arg whose value has no token format of its own, but whose name says secret.
    for (const [name, value] of buildArgsOf(line))
      if (findTokens(value).length === 0 && secretByName(name, value))
        findings.push({ path: where, kind: `secret in build arg ${name}`, preview: redactValue(value) });
  });
  return findings;
}

/** The findings of a JSON entry of a save stream when it is an image config; none for any other entry. */
export function configEntryFindings(bytes: Buffer): ConfigFinding[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString("utf8"));
  } catch {
    return []; // not JSON after all: some other file of the save, not ours to judge
  }
  return isImageConfig(doc) ? scanImageConfig(doc) : [];
}
