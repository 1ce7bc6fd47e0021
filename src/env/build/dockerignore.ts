/**
 * .dockerignore matching as the docker CLI does it: one pattern a line, `#` comments, `!` re-includes,
 * `*` and `?` within one path segment, `**` across segments, and a pattern that matches a folder excludes
 * everything under it. The last pattern that matches a path decides.
 */
interface Rule {
  regex: RegExp;
  negate: boolean;
  /** Pattern segments, used to tell whether an exception could reach inside an excluded folder. */
  prefix: string;
}

export class IgnoreMatcher {
  private readonly rules: Rule[];
  readonly hasExceptions: boolean;

  constructor(text: string) {
    this.rules = [];
    for (const raw of text.split(/\r?\n/)) {
      let line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      const negate = line.startsWith("!");
      if (negate) line = line.slice(1).trim();
      line = cleanPattern(line);
      if (!line) continue;
      this.rules.push({ regex: toRegex(line), negate, prefix: line });
    }
    this.hasExceptions = this.rules.some((r) => r.negate);
  }

  /** Whether a context-relative path ("a/b/c", forward slashes) is left out of the build context. */
  ignores(path: string): boolean {
    let ignored = false;
    const parents = parentPaths(path);
    for (const rule of this.rules) {
      const hit = rule.regex.test(path) || parents.some((p) => rule.regex.test(p));
      if (hit) ignored = !rule.negate;
    }
    return ignored;
  }

  /** Whether an excluded folder can be skipped whole: no exception could re-include anything inside it. */
  canSkipFolder(path: string): boolean {
    if (!this.hasExceptions) return true;
    return !this.rules.some(
      (r) =>
        r.negate &&
        (r.prefix.includes("**") || r.prefix.startsWith(path + "/") || couldMatchInside(r.prefix, path)),
    );
  }
}

function couldMatchInside(pattern: string, folder: string): boolean {
  const patternSegments = pattern.split("/");
  const folderSegments = folder.split("/");
  if (patternSegments.length <= folderSegments.length) return false;
  return folderSegments.every((segment, i) => toRegex(patternSegments[i]!).test(segment));
}

function parentPaths(path: string): string[] {
  const parts = path.split("/");
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join("/"));
  return out;
}

function cleanPattern(pattern: string): string {
  const segments: string[] = [];
  for (const segment of pattern.replace(/^\/+/, "").split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  return segments.join("/");
}

function toRegex(pattern: string): RegExp {
  let out = "^";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") {
      if (pattern[i + 1] === "*") {
        i++;
        if (pattern[i + 1] === "/") {
          i++;
          out += "(?:.*/)?";
        } else {
          out += ".*";
        }
      } else {
        out += "[^/]*";
      }
    } else if (c === "?") {
      out += "[^/]";
    } else if (c === "\\" && i + 1 < pattern.length) {
      out += escape(pattern[++i]!);
    } else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) {
        out += "\\[";
      } else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith("!")) body = "^" + body.slice(1);
        out += `[${body.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else {
      out += escape(c);
    }
  }
  return new RegExp(out + "$");
}

function escape(c: string): string {
  return /[.*?+^${}()|[\]\\/-]/.test(c) ? `\\${c}` : c;
}
