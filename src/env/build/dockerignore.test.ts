import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IgnoreMatcher } from "./dockerignore.ts";

/** Asserts which of `paths` the .dockerignore text leaves out. */
function check(text: string, expected: Record<string, boolean>): void {
  const matcher = new IgnoreMatcher(text);
  const actual = Object.fromEntries(Object.keys(expected).map((p) => [p, matcher.ignores(p)]));
  assert.deepEqual(actual, expected);
}

describe("IgnoreMatcher.ignores", () => {
  it("ignores nothing for an empty file", () => {
    check("", { "a.txt": false, "src/index.ts": false });
  });

  it("skips comments and blank lines", () => {
    const matcher = new IgnoreMatcher("# a comment\n\n   \n#secret\n");
    assert.equal(matcher.ignores("#secret"), false);
    assert.equal(matcher.ignores("a comment"), false);
    assert.equal(matcher.hasExceptions, false);
  });

  it("reads CRLF line endings and trims spaces around patterns", () => {
    check("  secret.txt  \r\nbuild\r\n", {
      "secret.txt": true,
      build: true,
      "build/out.js": true,
      other: false,
    });
  });

  it("matches a literal name only at the context root", () => {
    check("secret.txt", { "secret.txt": true, "sub/secret.txt": false, "secret.txt.bak": false });
  });

  it("lets * match within one path segment only", () => {
    check("*.log", { "a.log": true, ".log": true, "logs/a.log": false, "a.log.txt": false });
    check("src/*.js", { "src/a.js": true, "src/sub/a.js": false, "a.js": false });
  });

  it("lets **/ match any number of leading folders, including none", () => {
    check("**/*.log", { "a.log": true, "x/a.log": true, "x/y/z/a.log": true, "a.txt": false });
  });

  it("lets /**/ in the middle match zero or more folders", () => {
    check("a/**/b", { "a/b": true, "a/x/b": true, "a/x/y/b": true, "a/xb": false, "c/a/b": false });
  });

  it("lets a trailing ** match everything under a folder", () => {
    check("docs/**", { "docs/a.md": true, "docs/x/y.md": true, "docsx/a.md": false });
  });

  it("lets ? match exactly one character other than /", () => {
    check("file?.txt", { "file1.txt": true, "fileA.txt": true, "file.txt": false, "file12.txt": false });
    check("a?b", { "a/b": false, axb: true });
  });

  it("supports character classes, ranges and negated classes", () => {
    check("file[0-9].txt", { "file0.txt": true, "file9.txt": true, "filea.txt": false });
    check("[abc].md", { "a.md": true, "c.md": true, "d.md": false });
    check("x[!0-9]", { xa: true, x1: false });
    check("y[^0-9]", { ya: true, y1: false });
  });

  it("treats an unclosed [ literally", () => {
    check("a[b", { "a[b": true, ab: false });
  });

  it("treats a backslash-escaped [ and a leading \\! literally", () => {
    check("a\\[b", { "a[b": true, ab: false });
    check("\\!keep", { "!keep": true, keep: false });
  });

  it("treats a backslash-escaped * or ? literally", () => {
    check("a\\*b", { "a*b": true, ab: false, aab: false });
    check("a\\?b", { "a?b": true, ab: false });
    check("\\*.txt", { "*.txt": true, "a.txt": false });
  });

  it("escapes regex characters in patterns", () => {
    check("a+b.(c)", { "a+b.(c)": true, "aab.(c)": false, "a+bx(c)": false });
  });

  it("excludes everything under a folder the pattern matches", () => {
    check("node_modules", {
      node_modules: true,
      "node_modules/x": true,
      "node_modules/x/y.js": true,
      "node_modules_old/x.js": false,
      "src/node_modules/x.js": false,
    });
  });

  it("excludes everything under any folder a **/ pattern matches", () => {
    check("**/node_modules", {
      "node_modules/a.js": true,
      "pkg/node_modules/a/b.js": true,
      "pkg/a.js": false,
    });
  });

  it("cleans a leading /, ./, a trailing / and doubled slashes", () => {
    check("/build", { build: true, "build/a": true, "src/build": false });
    check("./dist", { dist: true, "dist/a": true });
    check("out/", { out: true, "out/a": true });
    check("a//b", { "a/b": true });
    check("a/./b/../c", { "a/c": true, "a/b": false });
  });

  it("ignores a pattern that cleans down to nothing", () => {
    const matcher = new IgnoreMatcher("/\n./\n!/\n");
    assert.equal(matcher.ignores("a"), false);
    assert.equal(matcher.hasExceptions, false);
  });

  it("re-includes with ! exceptions, the last matching pattern deciding", () => {
    check("*.md\n!README.md", { "a.md": true, "README.md": false });
    check("!README.md\n*.md", { "a.md": true, "README.md": true });
    check("*.md\n!README.md\nREADME.md", { "README.md": true });
  });

  it("re-includes a file inside an excluded folder", () => {
    check("node_modules\n!node_modules/keep.js", {
      node_modules: true,
      "node_modules/keep.js": false,
      "node_modules/other.js": true,
      "node_modules/keep.js/inner": false,
    });
  });

  it("re-includes a folder and all of its content after excluding everything", () => {
    check("*\n!src", { "src/a.ts": false, "src/deep/b.ts": false, "lib/a.ts": true, "README.md": true });
  });

  it("cleans a leading / after ! too", () => {
    check("*.md\n!/README.md", { "README.md": false });
  });

  it("reports whether any exception exists", () => {
    assert.equal(new IgnoreMatcher("a\nb").hasExceptions, false);
    assert.equal(new IgnoreMatcher("a\n!a/b").hasExceptions, true);
  });
});

describe("IgnoreMatcher.canSkipFolder", () => {
  it("skips any excluded folder when there are no exceptions", () => {
    assert.equal(new IgnoreMatcher("node_modules").canSkipFolder("node_modules"), true);
  });

  it("does not skip a folder an exception names a path inside of", () => {
    const matcher = new IgnoreMatcher("node_modules\n!node_modules/keep.js");
    assert.equal(matcher.canSkipFolder("node_modules"), false);
  });

  it("does not skip a nested folder an exception reaches into", () => {
    const matcher = new IgnoreMatcher("a\n!a/b/c.txt");
    assert.equal(matcher.canSkipFolder("a"), false);
    assert.equal(matcher.canSkipFolder("a/b"), false);
  });

  it("does not skip a folder a wildcard exception could reach into", () => {
    const matcher = new IgnoreMatcher("vendor\ncache\n!*/keep.txt");
    assert.equal(matcher.canSkipFolder("vendor"), false);
    assert.equal(matcher.canSkipFolder("cache"), false);
  });

  it("does not skip any folder when an exception uses **", () => {
    const matcher = new IgnoreMatcher("build\n!**/*.keep");
    assert.equal(matcher.canSkipFolder("build"), false);
  });

  it("skips a folder that no exception can reach", () => {
    const matcher = new IgnoreMatcher("node_modules\nbuild\n!node_modules/keep.js");
    assert.equal(matcher.canSkipFolder("build"), true);
    assert.equal(matcher.canSkipFolder("node_modules_old"), true);
  });

  it("skips a folder when the exception's first segment does not match it", () => {
    const matcher = new IgnoreMatcher("*\n!src/*.ts");
    assert.equal(matcher.canSkipFolder("lib"), true);
    assert.equal(matcher.canSkipFolder("src"), false);
  });
});
