import { posix } from "node:path";
import { VmError } from "../../errors.ts";

/**
 * .dockerignore read and matched as Docker does (moby/patternmatcher and its ignorefile reader, as the
 * docker CLI and BuildKit use them), quirks included. Each pattern becomes a Go regexp: `[!x]` is a class
 * of `!` and `x` (only `[^x]` negates), `\d` is a digit, `\t` a tab, `|` and `{2}` are regexp syntax; `**`
 * first or last makes a suffix or prefix test. A path is decided along its folders, the last matching
 * pattern winning (MatchesUsingParentResults); folders are skipped by BuildKit's rule. A line Docker
 * refuses (a malformed pattern, a lone `!`, a line of 64 KiB or more) makes the constructor throw.
 */
type Rule = { exclusion: boolean; test: (path: string) => boolean };
/** A line as ignorefile.ReadAll makes it: trimmed, cleaned, a leading `/` dropped, a leading `!` kept. */
export type IgnoreLine = { line: number; pattern: string };

export class IgnoreMatcher {
  private readonly rules: Rule[];
  /** Exception patterns less a trailing `/**` or `/*`, as BuildKit compares them with folders. */
  private readonly exceptionPrefixes: string[] = [];
  private readonly onlyPrefixExceptions: boolean;
  /** The folders of the last path asked about and their per-rule results, reused by the next path. */
  private cache: { path: string; info: boolean[] }[] = [];
  readonly hasExceptions: boolean;

  constructor(text: string) {
    this.rules = readDockerignore(text).map(({ line, pattern: read }) => {
      let pattern = goClean(goTrim(read));
      const exclusion = pattern.startsWith("!");
      if (exclusion && pattern.length === 1) throw refuse(line, read, 'illegal exclusion pattern: "!"');
      if (exclusion) pattern = pattern.slice(1);
      if (!globIsValid(pattern)) throw refuse(line, read, "syntax error in pattern");
      try {
        const test = compile(pattern);
        if (exclusion) this.exceptionPrefixes.push(pattern.replace(/\/\*\*$/, "").replace(/\/\*$/, ""));
        return { exclusion, test };
      } catch (error) {
        throw refuse(line, read, `syntax error in pattern (${(error as Error).message})`);
      }
    });
    this.hasExceptions = this.exceptionPrefixes.length > 0;
    this.onlyPrefixExceptions = !this.exceptionPrefixes.some((p) => /[*[\]?^\\]/.test(p));
  }

  /** Whether a context-relative path ("a/b/c", forward slashes) is left out of the build context. */
  ignores(path: string): boolean {
    const parent = path.includes("/") ? goClean(path.slice(0, path.lastIndexOf("/") + 1)) : ".";
    const dirs = parent === "." ? [] : parent.split("/");
    let info: boolean[] | undefined;
    for (let i = 0; i < dirs.length; i++) {
      const dir = dirs.slice(0, i + 1).join("/");
      if (this.cache[i]?.path !== dir)
        this.cache.splice(i, Infinity, { path: dir, info: this.step(dir, info).info });
      info = this.cache[i]!.info;
    }
    return this.step(path, info).matched;
  }

  /**
   * Whether an excluded folder can be skipped whole, by BuildKit's rule: always without exceptions; never
   * when an exception (less a trailing `/**` or `/*`) has a wildcard, class or escape in it; otherwise
   * only when no exception is the folder or a path inside it.
   */
  canSkipFolder(path: string): boolean {
    return this.onlyPrefixExceptions && !this.exceptionPrefixes.some((p) => `${p}/`.startsWith(`${path}/`));
  }

  /** One path given its folder's per-rule results, as patternmatcher's MatchesUsingParentResults. */
  private step(path: string, parent: boolean[] | undefined): { matched: boolean; info: boolean[] } {
    let matched = false;
    const info = this.rules.map(() => false);
    this.rules.forEach((rule, i) => {
      // A rule that could not change the outcome is not tried, and so not recorded for the children.
      if (!parent?.[i] && rule.exclusion !== matched) return;
      const match = parent?.[i] || rule.test(path);
      info[i] = match;
      if (match) matched = !rule.exclusion;
    });
    return { matched, info };
  }
}

/** The patterns of a .dockerignore, as ignorefile.ReadAll reads them, with their line numbers. */
export function readDockerignore(text: string): IgnoreLine[] {
  const out: IgnoreLine[] = [];
  const lines = text.replace(/^\uFEFF/, "").split("\n");
  for (const [i, raw] of lines.entries()) {
    // bufio.Scanner's limit: a line (with its \r) that fills its 64 KiB buffer is an error.
    if (Buffer.byteLength(raw) >= 65536) throw refuse(i + 1, raw.slice(0, 40) + "…", "line too long");
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.startsWith("#")) continue; // before trimming: " #x" is a pattern
    let pattern = goTrim(line);
    if (!pattern) continue;
    const invert = pattern.startsWith("!");
    if (invert) pattern = goTrim(pattern.slice(1));
    if (pattern) pattern = goClean(pattern);
    if (pattern.length > 1 && pattern.startsWith("/")) pattern = pattern.slice(1);
    out.push({ line: i + 1, pattern: invert ? `!${pattern}` : pattern });
  }
  return out;
}

const HINT = "Docker refuses to build with this line too: fix or remove it";
const refuse = (line: number, text: string, reason: string): VmError =>
  new VmError("BUILD_FAILED", `.dockerignore line ${line} (${JSON.stringify(text)}): ${reason}`, {
    hint: HINT,
  });

/** Go's unicode.IsSpace set, as strings.TrimSpace trims it (no U+FEFF, unlike String.prototype.trim). */
const SPACE = "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const TRIM = new RegExp(`^${SPACE}+|${SPACE}+$`, "g");
const goTrim = (s: string): string => s.replace(TRIM, "");

/** Go's filepath.Clean on Unix: no trailing `/`, a leading `..` of a relative path stays, "" is ".". */
function goClean(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

/** Whether Go's filepath.Match accepts the pattern's syntax (it checks all of it, matched or not). */
function globIsValid(pattern: string): boolean {
  const c = Array.from(pattern);
  // getEsc: one class character, maybe escaped, which must not end the pattern.
  const esc = (i: number): number => {
    if (i >= c.length || c[i] === "-" || c[i] === "]") return -1;
    if (c[i] === "\\" && ++i >= c.length) return -1;
    return i + 1 < c.length ? i + 1 : -1;
  };
  for (let i = 0; i < c.length; i++) {
    if (c[i] === "\\" && ++i >= c.length) return false;
    if (c[i - 1] === "\\" || c[i] !== "[") continue;
    i += c[i + 1] === "^" ? 2 : 1;
    for (let n = 0; !(c[i] === "]" && n > 0); n++) {
      i = esc(i);
      if (i >= 0 && c[i] === "-") i = esc(i + 1);
      if (i < 0) return false;
    }
  }
  return true;
}

/** patternmatcher's compile: an exact, prefix (`a/**`), suffix (`**` first) or Go-regexp test. */
function compile(pattern: string): (path: string) => boolean {
  const c = Array.from(pattern.replace(/^\uFEFF/, "")); // text/scanner skips a leading BOM
  let re = "^";
  let kind: "exact" | "prefix" | "suffix" | "regexp" = "exact";
  for (let i = 0, token = 0; i < c.length; token++) {
    const ch = c[i++]!;
    if (ch === "*" && c[i] === "*") {
      i += c[i + 1] === "/" ? 2 : 1;
      if (i < c.length) re += "(.*/)?";
      else if (kind !== "exact") re += ".*";
      kind = token === 0 ? "suffix" : i < c.length || kind !== "exact" ? "regexp" : "prefix";
    } else if (ch === "*" || ch === "?") {
      re += ch === "*" ? "[^/]*" : "[^/]";
      kind = "regexp";
    } else if (ch === "\\" && i < c.length) {
      re += `\\${c[i++]}`;
      kind = "regexp";
    } else {
      // Only `.+()$` are escaped: Docker's escape table drops `|`, `{` and `}` (so they stay regexp syntax).
      re += ".+()$".includes(ch) ? `\\${ch}` : ch;
      if (ch === "[" || ch === "]") kind = "regexp";
    }
  }
  if (kind === "exact") return (path) => path === pattern;
  if (kind === "prefix") return (path) => path.startsWith(pattern.slice(0, -2));
  if (kind === "suffix") {
    const suffix = pattern.slice(2);
    return (path) => path.endsWith(suffix) || (suffix.startsWith("/") && path === suffix.slice(1));
  }
  let source = goRegexpToJs(re + "$");
  // `(.*/)?(.*/)?` means `(.*/)?`; one copy spares the backtracking JavaScript does and Go's RE2 does not.
  while (source.includes(ANY_DIRS + ANY_DIRS)) source = source.replaceAll(ANY_DIRS + ANY_DIRS, ANY_DIRS);
  const regexp = new RegExp(source, "u");
  return (path) => regexp.test(path);
}

/** Character ranges as pairs of characters ("09AZ" is 0-9 and A-Z): Go's Perl and POSIX classes. */
const PERL: Record<string, string> = { d: "09", s: "\t\n\f\r  ", w: "09AZ__az" };
const POSIX: Record<string, string> = {
  ...{ alnum: "09AZaz", alpha: "AZaz", ascii: "\0\x7f", blank: "\t\t  ", cntrl: "\0\x1f\x7f\x7f" },
  ...{ digit: "09", graph: "!~", lower: "az", print: " ~", punct: "!/:@[`{~", space: "\t\r  " },
  ...{ upper: "AZ", word: "09AZ__az", xdigit: "09AFaf" },
};
const OPS: Record<string, string> = { "(": "(?:", ".": "[^\\n]", "^": "(?:^)", $: "(?:$)" };
const ESCAPED_OPS: Record<string, string> = { A: "(?:^)", z: "(?:$)", b: "(?:\\b)", B: "(?:\\B)" };
const CONTROL: Record<string, number> = { a: 7, f: 12, n: 10, r: 13, t: 9, v: 11 };
const ANY_DIRS = "(?:[^\\n]*/)?";

function ranges(pairs: string, negate: boolean): number[][] {
  const out: number[][] = [];
  let next = 0;
  for (let i = 0; i < pairs.length; i += 2) {
    const [lo, hi] = [pairs.charCodeAt(i), pairs.charCodeAt(i + 1)];
    if (!negate) out.push([lo, hi]);
    else if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  return negate ? [...out, [next, 0x10ffff]] : out;
}

const hex = (code: number): string => `\\u{${code.toString(16)}}`;
const jsClass = (rs: number[][], negate: boolean): string =>
  `[${negate ? "^" : ""}${rs.map(([lo, hi]) => (lo === hi ? hex(lo!) : `${hex(lo!)}-${hex(hi!)}`)).join("")}]`;
const literal = (ch: string): string => ("^$\\.*+?()[]{}|".includes(ch) ? `\\${ch}` : ch);
const literals = (cs: string[]): string => cs.map(literal).join("");

/** A Perl class escape (\d \D \s \S \w \W) at c[i] as ranges; \p and \P (Unicode classes) are refused. */
function perlClass(c: string[], i: number): number[][] | undefined {
  const next = c[i] === "\\" ? (c[i + 1] ?? "") : "";
  if (next === "p" || next === "P") throw new Error(`vm does not support \\${next}, a Go Unicode class`);
  return PERL[next.toLowerCase()] === undefined ? undefined : ranges(PERL[next.toLowerCase()]!, next < "a");
}

/** Go's regexp syntax (as Docker's patterns can produce it) in JavaScript's, or an Error where Go errs. */
function goRegexpToJs(source: string): string {
  const c = Array.from(source);
  let out = "";
  for (let i = 0; i < c.length;) {
    const [ch, next] = [c[i]!, c[i + 1] ?? ""];
    // Go's {n}, {n,} and {n,m} (up to 1000, no leading zeros); any other { is a literal.
    const repeat =
      ch === "{" ? /^\{(0|[1-9]\d*)(?:(,)(0|[1-9]\d*)?)?\}/.exec(c.slice(i, i + 24).join("")) : null;
    const perl = perlClass(c, i);
    if (ch === "[") {
      const [js, end] = goClass(c, i);
      [out, i] = [out + js, end];
    } else if (repeat) {
      const [text, min, , max] = repeat;
      if (Number(min) > 1000 || Number(max ?? 0) > 1000 || Number(min) > Number(max ?? Infinity))
        throw new Error(`invalid repeat count ${text}`);
      [out, i] = [out + text, i + text.length];
    } else if (ch === "\\" && ESCAPED_OPS[next]) {
      [out, i] = [out + ESCAPED_OPS[next], i + 2];
    } else if (ch === "\\" && next === "Q") {
      // \Q...\E is literal text, to \E or to the end.
      const end = c.findIndex((x, j) => j > i + 1 && x === "\\" && c[j + 1] === "E");
      const stop = end < 0 ? c.length : end;
      [out, i] = [out + literals(c.slice(i + 2, stop)), stop + 2];
    } else if (perl) {
      [out, i] = [out + jsClass(perl, false), i + 2];
    } else if (ch === "\\") {
      if (next === "C") throw new Error("invalid escape sequence \\C");
      const [code, end] = goEscape(c, i);
      [out, i] = [out + literal(String.fromCodePoint(code)), end];
    } else {
      [out, i] = [out + (OPS[ch] ?? (")*+?|".includes(ch) ? ch : literal(ch))), i + 1];
    }
  }
  return out;
}

/** The Go regexp character class starting at c[start] (`[`) in JavaScript's syntax, and where it ends. */
function goClass(c: string[], start: number): [string, number] {
  let i = start + (c[start + 1] === "^" ? 2 : 1);
  const rs: number[][] = [];
  const classChar = (): number => {
    if (i >= c.length) throw new Error("missing closing ]");
    const [code, end] = c[i] === "\\" ? goEscape(c, i) : [c[i]!.codePointAt(0)!, i + 1];
    i = end;
    return code;
  };
  for (let first = true; first || c[i] !== "]"; first = false) {
    const rest = c[i] === "[" && c[i + 1] === ":" ? c.slice(i + 2).join("") : "";
    const name = rest.includes(":]") ? rest.slice(0, rest.indexOf(":]")) : undefined; // [:alpha:], [:^alpha:]
    const perl = perlClass(c, i);
    if (name !== undefined) {
      const group = POSIX[name.replace(/^\^/, "")];
      if (group === undefined) throw new Error(`invalid character class [:${name}:]`);
      rs.push(...ranges(group, name.startsWith("^")));
      i += 4 + Array.from(name).length;
    } else if (perl) {
      rs.push(...perl);
      i += 2;
    } else {
      const lo = classChar();
      const hi = c[i] === "-" && c[i + 1] !== undefined && c[i + 1] !== "]" && ++i ? classChar() : lo;
      if (hi < lo) throw new Error("invalid character class range");
      rs.push([lo, hi]);
    }
  }
  return [jsClass(rs, c[start + 1] === "^"), i + 1];
}

/** Go's parseEscape: `\` + punctuation is itself; \a \f \n \r \t \v; octal and hex; else an error. */
function goEscape(c: string[], i: number): [number, number] {
  const ch = c[i + 1];
  if (ch === undefined) throw new Error("trailing backslash");
  if (ch.codePointAt(0)! < 0x80 && !/[0-9A-Za-z]/.test(ch)) return [ch.codePointAt(0)!, i + 2];
  const octal = /^(?:0[0-7]{0,2}|[1-7][0-7]{1,2})/.exec(c.slice(i + 1, i + 4).join(""));
  if (octal) return [parseInt(octal[0], 8), i + 1 + octal[0].length];
  // \xHH, or \x{H...} up to U+10FFFF (Docker leaves `{` unescaped)
  const hexa = ch === "x" ? /^(?:\{([0-9A-Fa-f]+)\}|([0-9A-Fa-f]{2}))/.exec(c.slice(i + 2).join("")) : null;
  const code = hexa ? parseInt(hexa[1] ?? hexa[2]!, 16) : NaN;
  if (code <= 0x10ffff) return [code, i + 2 + hexa![0].length];
  if (CONTROL[ch] !== undefined) return [CONTROL[ch], i + 2];
  throw new Error(`invalid escape sequence \\${ch}`);
}
