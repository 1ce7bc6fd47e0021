/**
 * Findings known to be fine (a test fixture's key, a documented demo token): `--allow PATTERN` on export
 * and scan, and one pattern per line in $XDG_CONFIG_HOME/vm/secrets.ignore (`#` starts a comment).
 * A pattern with a `/`, or one starting `config:` or `history:`, is matched against the finding's place
 * (`*` any run of characters, `?` one; a leading `/` optional); any other pattern is a kind (`Slack
 * webhook`, case ignored) or a file name (`*.pem`).
 */
import { readFile } from "node:fs/promises";
import { systemErrorCode } from "../errors.ts";
import type { SecretFinding } from "./secrets.ts";

export const IGNORE_FILE = "secrets.ignore";

/** The patterns of `--allow` and of the config folder's secrets.ignore (absent: none). */
export async function allowPatterns(configDir: string, flags: string[]): Promise<string[]> {
  let text = "";
  try {
    text = await readFile(`${configDir}/${IGNORE_FILE}`, "utf8");
  } catch (error) {
    if (systemErrorCode(error) !== "ENOENT") throw error;
  }
  const lines = text.split("\n").map((line) => line.replace(/(^|\s)#.*$/, "").trim());
  return [...lines, ...flags.map((flag) => flag.trim())].filter((p) => p.length > 0);
}

const glob = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
    "i",
  );

function matches(finding: SecretFinding, pattern: string): boolean {
  const place = /^(?:config|history):/.test(pattern) || pattern.includes("/");
  if (place) return glob(pattern.replace(/^\/+/, "")).test(finding.path.replace(/^\/+/, ""));
  if (pattern.toLowerCase() === finding.kind.toLowerCase()) return true;
  return (
    finding.source !== "config" && glob(pattern).test(finding.path.slice(finding.path.lastIndexOf("/") + 1))
  );
}

/** The findings no pattern allows, and how many were allowed. */
export function withoutAllowed(
  findings: SecretFinding[],
  patterns: string[],
): { findings: SecretFinding[]; allowed: number } {
  const kept = findings.filter((finding) => !patterns.some((pattern) => matches(finding, pattern)));
  return { findings: kept, allowed: findings.length - kept.length };
}
