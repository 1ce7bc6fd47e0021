/**
 * Self-identifying secret tokens in text: the token formats whose prefix and shape say which service issued
 * them, so a match needs no surrounding context (`password=` lines and private keys are secret-rules.ts').
 *
 * Formats, as their vendors document them: GitHub ("Behind GitHub's new authentication token formats",
 * github.blog 2021), GitLab ("Token prefixes"), Slack ("Token types", incoming webhooks), Anthropic and
 * OpenAI API keys, Hugging Face ("User access tokens"), npm ("About access tokens"), Google Cloud API keys,
 * Stripe ("API keys"), Twilio ("API keys", SK…), AWS IAM ("Unique identifiers": AKIA/ASIA), SendGrid,
 * DigitalOcean (dop_v1_…), PyPI (macaroon API tokens), Shopify (shpat_… access tokens), Databricks
 * (dapi…), and JSON Web Tokens (RFC 7519).
 *
 * Limits: shape and entropy heuristics only — no checksum (GitHub's CRC32) or online check, so an invented
 * token of the right shape is reported and a real token that happens to look like a placeholder is not.
 * Newer GitLab tokens with dot-separated suffixes are matched up to the first dot.
 *
 * Speed: every pattern is precompiled, anchored on a literal prefix that `text.includes` checks first, and
 * uses only bounded, unambiguous quantifiers, so a scan is linear in the text.
 */

export interface TokenMatch {
  kind: string;
  preview: string;
}

interface Format {
  kind: string;
  /** Literal prefixes; the pattern runs only when the text contains one of them. */
  needles: readonly string[];
  /** Global, with indices; group 1 is the random part that the placeholder checks judge. */
  pattern: RegExp;
  /** Characters shown before the ellipsis, never past the start of group 1 (0: first 4 characters). */
  prefix: number;
  /** The random part always holds a letter and a digit (or, with "cases", both upper and lower case). */
  mix?: "alnum" | "cases";
  valid?: (token: string) => boolean;
}

const WORD_END = "(?![A-Za-z0-9_])";
const B64_END = "(?![A-Za-z0-9_-])";

/**
 * A token must not follow a character of its alphabet: `xghp_…` is part of a longer identifier. That also
 * keeps the scan linear, since only the first position of a run can start a match. For base64url
 * alphabets (patterns ending in B64_END) the `-` counts too.
 */
const format = (kind: string, needles: string[], source: string, prefix: number, rest?: Partial<Format>) => ({
  kind,
  needles,
  pattern: new RegExp(`(?<![A-Za-z0-9_${source.endsWith(B64_END) ? "-" : ""}])${source}`, "gd"),
  prefix,
  ...rest,
});

const FORMATS: readonly Format[] = [
  format(
    "GitHub token",
    ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
    `gh[pousr]_([A-Za-z0-9]{36})${WORD_END}`,
    4,
    { mix: "alnum" },
  ),
  format("GitHub token", ["github_pat_"], `github_pat_([A-Za-z0-9]{22}_[A-Za-z0-9]{59})${WORD_END}`, 11, {
    mix: "alnum",
  }),
  format(
    "GitLab token",
    ["glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glsoat-"],
    `gl(?:pat|dt|rt|ptt|cbt|soat)-([\\w-]{20,80})${B64_END}`,
    7,
  ),
  format(
    "Slack token",
    ["xoxb-", "xoxp-", "xoxa-", "xoxs-", "xoxr-"],
    `xox[abprs]-(?:[0-9]{1,15}-){1,4}([A-Za-z0-9]{20,64})${B64_END}`,
    5,
  ),
  format(
    "Slack webhook",
    ["hooks.slack.com/services/"],
    `https://hooks\\.slack\\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/([A-Za-z0-9]{24})${WORD_END}`,
    33,
  ),
  format("Anthropic API key", ["sk-ant-"], `sk-ant-(?:[a-z]{2,8}[0-9]{2}-)?([\\w-]{80,200})${B64_END}`, 12),
  format(
    "OpenAI API key",
    ["sk-proj-", "sk-svcacct-", "sk-admin-"],
    `sk-(?:proj|svcacct|admin)-([\\w-]{40,250})${B64_END}`,
    12,
  ),
  format("OpenAI API key", ["T3BlbkFJ"], `sk-([A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})${WORD_END}`, 3),
  format("Hugging Face token", ["hf_"], `hf_([A-Za-z0-9]{34})${WORD_END}`, 3, { mix: "cases" }),
  format("npm token", ["npm_"], `npm_([A-Za-z0-9]{36})${WORD_END}`, 4, { mix: "alnum" }),
  format("Google API key", ["AIza"], `AIza([\\w-]{35})${B64_END}`, 4),
  format(
    "Stripe key",
    ["sk_live_", "rk_live_", "sk_test_", "rk_test_"],
    `[rs]k_(?:live|test)_([A-Za-z0-9]{24,247})${WORD_END}`,
    8,
    { mix: "alnum" },
  ),
  format("Twilio key", ["SK"], `SK([0-9a-f]{32})${WORD_END}`, 2, { mix: "alnum" }),
  format("AWS access key", ["AKIA", "ASIA"], `(?:AKIA|ASIA)([A-Z0-9]{16})${WORD_END}`, 4),
  format("SendGrid key", ["SG."], `SG\\.[\\w-]{22}\\.([\\w-]{43})${B64_END}`, 3),
  format("DigitalOcean token", ["dop_v1_", "doo_v1_", "dor_v1_"], `do[opr]_v1_([0-9a-f]{64})${WORD_END}`, 7, {
    mix: "alnum",
  }),
  format(
    "PyPI token",
    ["pypi-AgE"],
    `pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)([\\w-]{50,500})${B64_END}`,
    12,
  ),
  format(
    "Shopify token",
    ["shpat_", "shpss_", "shpca_", "shppa_"],
    `shp(?:at|ss|ca|pa)_([0-9a-fA-F]{32})${WORD_END}`,
    6,
    { mix: "alnum" },
  ),
  format("Databricks token", ["dapi"], `dapi([0-9a-f]{32})(?:-[0-9])?${WORD_END}`, 4, { mix: "alnum" }),
  format(
    "JSON Web Token",
    ["eyJ"],
    `eyJ[\\w-]{10,2000}\\.eyJ[\\w-]{2,16000}\\.([\\w-]{16,2000})${B64_END}`,
    0,
    { valid: jwtHeaderHasAlg },
  ),
];

/** A JWT's header is base64url JSON naming its algorithm; `eyJ` alone (`{"`) is no proof. */
function jwtHeaderHasAlg(token: string): boolean {
  try {
    const header: unknown = JSON.parse(
      Buffer.from(token.slice(0, token.indexOf(".")), "base64url").toString(),
    );
    return typeof header === "object" && header !== null && "alg" in header;
  } catch {
    return false;
  }
}

/**
 * Placeholder markers. `<`, `>`, `...` and `*` never fall inside a token's alphabet, so `ghp_<your token>`
 * or `sk-...` fail the patterns already; what remains is words, x/0 runs and repeated characters.
 */
const PLACEHOLDER = /example|xxxx|your|000000|(.)\1{7}/i;

/** Share of `s` in ascending or descending runs of 4+ characters (`abcd`, `9876`), case folded. */
function sequentialShare(s: string): number {
  const lower = s.toLowerCase();
  let covered = 0;
  let run = 1;
  let step = 0;
  for (let i = 1; i <= lower.length; i++) {
    const delta = i < lower.length ? lower.charCodeAt(i) - lower.charCodeAt(i - 1) : 0;
    if ((delta === 1 || delta === -1) && (run === 1 || delta === step)) {
      run++;
      step = delta;
      continue;
    }
    if (run >= 4) covered += run;
    // A run that breaks direction (`abcb`) restarts from its last character.
    run = delta === 1 || delta === -1 ? 2 : 1;
    step = delta;
  }
  return lower.length === 0 ? 0 : covered / lower.length;
}

function looksRandom(random: string, mix: Format["mix"]): boolean {
  if (PLACEHOLDER.test(random)) return false;
  if (entropy(random) < (random.length >= 20 ? 3 : 2.5)) return false;
  if (sequentialShare(random) >= 0.5) return false;
  if (mix === "alnum") return /[0-9]/.test(random) && /[A-Za-z]/.test(random);
  if (mix === "cases") return /[a-z]/.test(random) && /[A-Z]/.test(random);
  return true;
}

/** Every distinct token found in `text`, in order of appearance, deduplicated by (kind, preview). */
export function findTokens(text: string): TokenMatch[] {
  const hits: { at: number; match: TokenMatch }[] = [];
  for (const { kind, needles, pattern, prefix, mix, valid } of FORMATS) {
    if (!needles.some((needle) => text.includes(needle))) continue;
    pattern.lastIndex = 0;
    for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
      const token = m[0];
      const random = m[1] ?? token;
      if (!looksRandom(random, mix) || (valid !== undefined && !valid(token))) continue;
      const randomStart = (m.indices?.[1]?.[0] ?? m.index) - m.index;
      const preview = redact(token, prefix === 0 ? 0 : Math.min(prefix, randomStart));
      hits.push({ at: m.index, match: { kind, preview } });
    }
  }
  hits.sort((a, b) => a.at - b.at);
  const seen = new Set<string>();
  const found: TokenMatch[] = [];
  for (const { match } of hits) {
    const key = `${match.kind}\0${match.preview}`;
    if (seen.has(key)) continue;
    seen.add(key);
    found.push(match);
  }
  return found;
}

/**
 * `ghp_…6789`: the first `prefixLength` characters (the format's fixed prefix; 0 means the first 4), an
 * ellipsis and the last 4 characters. A token too short to hide anything between them keeps only its head.
 */
export function redact(token: string, prefixLength: number): string {
  const head = token.slice(0, prefixLength > 0 ? prefixLength : 4);
  if (token.length < head.length + 8) return `${head}…`;
  return `${head}…${token.slice(-4)}`;
}

/** Shannon entropy in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let bits = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/** A value of no known format (a password, an opaque token): two characters and the last four when it is
 * long enough that they give nothing away, else only an ellipsis. */
export function redactValue(value: string): string {
  return value.length >= 16 ? redact(value, 2) : "…";
}
