import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { describe, it } from "node:test";
import tar from "tar-stream";
import { isVmError } from "../../errors.ts";
import { packBuildContext } from "./context.ts";
import { IgnoreMatcher, readDockerignore } from "./dockerignore.ts";

/** What Docker decides for one path: excluded (true), kept (false), or the .dockerignore is refused. */
type Outcome = boolean | "error";

function decide(text: string, path: string): Outcome {
  let matcher: IgnoreMatcher;
  try {
    matcher = new IgnoreMatcher(text);
  } catch (error) {
    assert.ok(isVmError(error, "BUILD_FAILED"), `not a VmError: ${String(error)}`);
    return "error";
  }
  return matcher.ignores(path);
}

/** Runs a table of [.dockerignore text, path, outcome] and reports every row that disagrees. */
function checkTable(rows: [string, string, Outcome][]): void {
  const wrong = rows
    .map(([text, path, want]) => ({ text, path, want, got: decide(text, path) }))
    .filter((row) => row.got !== row.want);
  assert.deepEqual(wrong, []);
}

/** Asserts which of `paths` the .dockerignore text leaves out. */
function check(text: string, expected: Record<string, boolean>): void {
  const matcher = new IgnoreMatcher(text);
  const actual = Object.fromEntries(Object.keys(expected).map((p) => [p, matcher.ignores(p)]));
  assert.deepEqual(actual, expected);
}

function refuses(text: string, message: RegExp): void {
  assert.throws(
    () => new IgnoreMatcher(text),
    (error: unknown) => {
      assert.ok(isVmError(error, "BUILD_FAILED"));
      assert.match(error.message, message);
      return true;
    },
  );
}

// Facts from moby/patternmatcher's patternmatcher_test.go (TestMatches: one pattern, one path, whether it
// is excluded; every case holds for all four of its matching functions, the walk's among them).
const mobyMatches: [string, string, Outcome][] = [
  ["**", "file", true],
  ["**", "file/", true],
  ["**/", "file", true],
  ["**/", "file/", true],
  ["**", "/", true],
  ["**/", "/", true],
  ["**", "dir/file", true],
  ["**/", "dir/file", true],
  ["**", "dir/file/", true],
  ["**/", "dir/file/", true],
  ["**/**", "dir/file", true],
  ["**/**", "dir/file/", true],
  ["dir/**", "dir/file", true],
  ["dir/**", "dir/file/", true],
  ["dir/**", "dir/dir2/file", true],
  ["dir/**", "dir/dir2/file/", true],
  ["**/dir", "dir", true],
  ["**/dir", "dir/file", true],
  ["**/dir2/*", "dir/dir2/file", true],
  ["**/dir2/*", "dir/dir2/file/", true],
  ["**/dir2/**", "dir/dir2/dir3/file", true],
  ["**/dir2/**", "dir/dir2/dir3/file/", true],
  ["**file", "file", true],
  ["**file", "dir/file", true],
  ["**/file", "dir/file", true],
  ["**file", "dir/dir/file", true],
  ["**/file", "dir/dir/file", true],
  ["**/file*", "dir/dir/file", true],
  ["**/file*", "dir/dir/file.txt", true],
  ["**/file*txt", "dir/dir/file.txt", true],
  ["**/file*.txt", "dir/dir/file.txt", true],
  ["**/file*.txt*", "dir/dir/file.txt", true],
  ["**/**/*.txt", "dir/dir/file.txt", true],
  ["**/**/*.txt2", "dir/dir/file.txt", false],
  ["**/*.txt", "file.txt", true],
  ["**/**/*.txt", "file.txt", true],
  ["a**/*.txt", "a/file.txt", true],
  ["a**/*.txt", "a/dir/file.txt", true],
  ["a**/*.txt", "a/dir/dir/file.txt", true],
  ["a/*.txt", "a/dir/file.txt", false],
  ["a/*.txt", "a/file.txt", true],
  ["a/*.txt**", "a/file.txt", true],
  ["a[b-d]e", "ae", false],
  ["a[b-d]e", "ace", true],
  ["a[b-d]e", "aae", false],
  ["a[^b-d]e", "aze", true],
  [".*", ".foo", true],
  [".*", "foo", false],
  ["abc.def", "abcdef", false],
  ["abc.def", "abc.def", true],
  ["abc.def", "abcZdef", false],
  ["abc?def", "abcZdef", true],
  ["abc?def", "abcdef", false],
  ["a\\\\", "a\\", true],
  ["**/foo/bar", "foo/bar", true],
  ["**/foo/bar", "dir/foo/bar", true],
  ["**/foo/bar", "dir/dir2/foo/bar", true],
  ["abc/**", "abc", false],
  ["abc/**", "abc/def", true],
  ["abc/**", "abc/def/ghi", true],
  ["**/.foo", ".foo", true],
  ["**/.foo", "bar.foo", false],
  ["a(b)c/def", "a(b)c/def", true],
  ["a(b)c/def", "a(b)c/xyz", false],
  ["a.|)$(}+{bc", "a.|)$(}+{bc", true],
  [
    "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
    "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
    true,
  ],
  ["dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true],
  ["a\\*b", "a*b", true], // not on Windows
];

// TestMatches' several-pattern cases: `!` re-includes, a later pattern excludes again.
const mobyMultiPattern: [string, string, Outcome][] = [
  ["**\n!util/docker/web", "util/docker/web/foo", false],
  ["**\n!util/docker/web\nutil/docker/web/foo", "util/docker/web/foo", true],
  [
    "**\n!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
    "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
    false,
  ],
  ["**\n!dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false],
];

// patternmatcher_test.go's matchTests (taken there from Go's filepath.Match tests): "error" is where
// patternmatcher.New refuses the pattern (filepath.ErrBadPattern), as Docker then refuses the build.
const mobyFilepathMatches: [string, string, Outcome][] = [
  ["abc", "abc", true],
  ["*", "abc", true],
  ["*c", "abc", true],
  ["a*", "a", true],
  ["a*", "abc", true],
  ["a*", "ab/c", true],
  ["a*/b", "abc/b", true],
  ["a*/b", "a/c/b", false],
  ["a*b*c*d*e*/f", "axbxcxdxe/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/f", true],
  ["a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false],
  ["a*b*c*d*e*/f", "axbxcxdxexxx/fff", false],
  ["a*b?c*x", "abxbbxdbxebxczzx", true],
  ["a*b?c*x", "abxbbxdbxebxczzy", false],
  ["ab[c]", "abc", true],
  ["ab[b-d]", "abc", true],
  ["ab[e-g]", "abc", false],
  ["ab[^c]", "abc", false],
  ["ab[^b-d]", "abc", false],
  ["ab[^e-g]", "abc", true],
  ["a\\*b", "a*b", true],
  ["a\\*b", "ab", false],
  ["a?b", "a☺b", true],
  ["a[^a]b", "a☺b", true],
  ["a???b", "a☺b", false],
  ["a[^a][^a][^a]b", "a☺b", false],
  ["[a-ζ]*", "α", true],
  ["*[a-ζ]", "A", false],
  ["a?b", "a/b", false],
  ["a*b", "a/b", false],
  ["[\\]a]", "]", true],
  ["[\\-]", "-", true],
  ["[x\\-]", "x", true],
  ["[x\\-]", "-", true],
  ["[x\\-]", "z", false],
  ["[\\-x]", "x", true],
  ["[\\-x]", "-", true],
  ["[\\-x]", "a", false],
  ["[]a]", "]", "error"],
  ["[-]", "-", "error"],
  ["[x-]", "x", "error"],
  ["[x-]", "-", "error"],
  ["[x-]", "z", "error"],
  ["[-x]", "x", "error"],
  ["[-x]", "-", "error"],
  ["[-x]", "a", "error"],
  ["\\", "a", "error"],
  ["[a-b-c]", "a", "error"],
  ["[", "a", "error"],
  ["[^", "a", "error"],
  ["[^bc", "a", "error"],
  ["a[", "a", "error"],
  ["a[", "ab", "error"],
  ["*x", "xxx", true],
];

// The file-level tests of patternmatcher_test.go.
const mobySingleTests: [string, string, Outcome][] = [
  ["*", "fileutils.go", true], // TestWildcardMatches
  ["*.go", "fileutils.go", true], // TestPatternMatches
  ["!fileutils.go\n*.go", "fileutils.go", true], // TestExclusionPatternMatchesPatternBefore
  ["docs\n!docs/README.md", "docs/README.md", false], // TestPatternMatchesFolderExclusions
  ["docs/\n!docs/README.md", "docs/README.md", false], // ...FolderWithSlashExclusions
  ["docs/*\n!docs/README.md", "docs/README.md", false], // ...FolderWildcardExclusions
  ["*.go\n!fileutils.go", "fileutils.go", false], // TestExclusionPatternMatchesPatternAfter
  ["*.go", ".", false], // TestExclusionPatternMatchesWholeDirectory
  ["!", "fileutils.go", "error"], // TestSingleExclamationError, TestCleanPatternsErrorSingleException
  ["", "/any/path/there", false], // TestMatchesWithNoPatterns
  ["[", "/any/path/there", "error"], // TestMatchesWithMalformedPatterns
  // Passes filepath.Match's check but is no Go regexp (range l-O): refused, as Docker refuses it when
  // it first matches (TestMatchesOrParentMatchesMalformedPatternDoesNotPanicOnRepeatedCall).
  ["[Local-Only]/", "x", "error"],
];

describe("IgnoreMatcher against moby/patternmatcher's own cases", () => {
  it("matches TestMatches' single-pattern table", () => checkTable(mobyMatches));
  it("matches TestMatches' several-pattern table", () => checkTable(mobyMultiPattern));
  it("matches matchTests, refusing the malformed patterns", () => checkTable(mobyFilepathMatches));
  it("matches the file-level tests", () => checkTable(mobySingleTests));

  it("keeps exception flags through surrounding spaces (TestCleanPatterns*)", () => {
    assert.equal(new IgnoreMatcher("docs\n  !docs/README.md").hasExceptions, true);
    assert.equal(new IgnoreMatcher("docs\n!docs/README.md  ").hasExceptions, true);
    assert.equal(new IgnoreMatcher("docs\nconfig\n").hasExceptions, false);
  });

  it("reads lines as ignorefile.ReadAll does (ignorefile_test.go's TestReadAll)", () => {
    const text = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
    assert.deepEqual(
      readDockerignore(text).map((line) => line.pattern),
      ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"],
    );
    assert.deepEqual(readDockerignore(""), []);
    // The lone `!` lines are then refused, as patternmatcher.New refuses them.
    refuses(text, /line 8 \("!"\): illegal exclusion pattern/);
  });
});

// Docker's behaviour beyond its tests, each row checked against moby/patternmatcher compiled with Go
// (ignorefile.ReadAll, patternmatcher.New, MatchesUsingParentResults along the path's folders).
const dockerQuirks: [string, string, Outcome][] = [
  // Only ^ negates a class; [!0-9] is `!` or a digit (Go's filepath.Match and regexp both).
  ["x[!0-9]", "x!", true],
  ["x[!0-9]", "x1", true],
  ["x[!0-9]", "xa", false],
  ["y[^0-9]", "ya", true],
  ["y[^0-9]", "y!", true],
  ["y[^0-9]", "y1", false],
  // A backslash before a letter is a Go regexp escape: \d a digit, \t a tab, \b a word boundary.
  ["v\\d", "v1", true],
  ["v\\d", "vd", false],
  ["src\\test", "src\test", true],
  ["src\\test", "srctest", false],
  ["foo\\bar", "foobar", false],
  ["foo\\bar", "foo\\bar", false],
  ["a\\x41", "aA", true],
  ["x[[:digit:]]", "x5", true],
  ["x[[:digit:]]", "xa", false],
  // \Q starts literal text up to \E, swallowing the end anchor.
  ["a\\Q*", "a[^/]*$xyz", true],
  ["a\\Q*", "ab", false],
  // `|`, `{` and `}` are not escaped (Docker's escape table loses them): regexp syntax once a pattern
  // has a wildcard, literal text in a pattern without one.
  ["a|b*", "abc", true],
  ["a|b*", "dir/ab", true],
  ["a|b*", "zzz", false],
  ["x|y", "x|y", true],
  ["x|y", "x", false],
  ["x{2}*", "xx", true],
  ["x{2}*", "x{2}", false],
  ["x{2}", "x{2}", true],
  ["x{2}", "xx", false],
  // A `^` outside a class is a regexp anchor, except in a wildcard-free (exact) pattern.
  ["a^b", "a^b", true],
  ["a^c*", "a^cd", false],
  // A `*` or `?` inside a class becomes regexp text that closes the class early.
  ["[*]", "]", true],
  ["[*]", "[]", true],
  ["[*]", "*", false],
  // `**` first is a suffix test, `**` last a prefix test, not path-segment globs.
  ["**foo", "xfoo", true],
  ["**foo", "a/bfoo", true],
  ["**foo", "foox", false],
  ["abc**", "abcd/x", true],
  ["abc**", "ab", false],
  ["a/**/b", "a/b", true],
  ["a/**/b", "a/x/y/b", true],
  ["a/**/b", "c/a/b", false],
  // A folder's results carry to its children: `!a` re-includes `a` but not what `a/b` excluded.
  ["a/b\n!a", "a/b/c", true],
  ["a/b\n!a", "a/x", false],
  ["*.md\n!README.md\nREADME.md", "README.md", true],
  ["*\n!src", "src/deep/b.ts", false],
  // Cleaning: `..` stays at the front of a relative pattern (so matches nothing), `/..` is `/`.
  ["../a", "a", false],
  ["/../b", "b", true],
  ["a/./b/../c", "a/c", true],
  ["a/./b/../c", "a/b", false],
  ["/build", "build/a", true],
  ["./dist", "dist/a", true],
  ["out/", "out/a", true],
  ["/\n./\n.", "a", false],
  // Comments are lines that start with `#`, before trimming.
  ["  #x", "#x", true],
  ["#y", "#y", false],
  ["\\!keep", "!keep", true],
  ["\\!keep", "keep", false],
  // Malformed patterns, which Docker refuses.
  ["a[b", "a[b", "error"],
  ["a*[", "a", "error"],
  ["a\\", "a", "error"],
  ["a\\1", "a", "error"],
  ["[a-\\z]", "a", "error"],
  ["x[[:foo:]]", "x", "error"],
  ["!/", "a", "error"],
  ["! ", "a", "error"],
];

describe("IgnoreMatcher.ignores", () => {
  it("follows Docker where it differs from shell globs", () => checkTable(dockerQuirks));

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

  it("drops a leading BOM and trims what Go's TrimSpace trims", () => {
    check("\uFEFFa\n\u0085b\u0085\n\uFEFFc", { a: true, b: true, c: false, "\uFEFFc": true });
  });

  it("matches a literal name only at the context root", () => {
    check("secret.txt", { "secret.txt": true, "sub/secret.txt": false, "secret.txt.bak": false });
  });

  it("lets * and ? match within one path segment only", () => {
    check("*.log", { "a.log": true, ".log": true, "logs/a.log": false, "a.log.txt": false });
    check("file?.txt", { "file1.txt": true, "file.txt": false, "file12.txt": false });
    check("a?b", { "a/b": false, axb: true });
  });

  it("escapes regexp characters and honours backslash escapes", () => {
    check("a+b.(c)", { "a+b.(c)": true, "aab.(c)": false, "a+bx(c)": false });
    check("a\\[b\na\\*b\n\\*.txt", { "a[b": true, ab: false, "a*b": true, aab: false, "*.txt": true });
  });

  it("excludes everything under a folder the pattern matches", () => {
    check("node_modules\n!node_modules/keep.js", {
      node_modules: true,
      "node_modules/keep.js": false,
      "node_modules/keep.js/inner": false,
      "node_modules/other.js": true,
      "node_modules_old/x.js": false,
    });
    check("**/node_modules", {
      "node_modules/a.js": true,
      "pkg/node_modules/a/b.js": true,
      "pkg/a.js": false,
    });
  });

  it("answers the same whatever order paths are asked in", () => {
    const matcher = new IgnoreMatcher("a/b\n!a\nc/**\n!c/d/e");
    const paths = ["a/b/c", "c/d/e/f", "a/x", "c/d/e", "a/b", "c/d", "a/b/c/d", "x"];
    const forward = paths.map((p) => matcher.ignores(p));
    const backward = [...paths].reverse().map((p) => matcher.ignores(p));
    assert.deepEqual(backward.reverse(), forward);
    assert.deepEqual(forward, [true, false, false, false, true, true, true, false]);
  });
});

describe("IgnoreMatcher refusals", () => {
  it("names the line and the pattern Docker refuses", () => {
    refuses("ok\n# fine\n  [abc  \n", /^\.dockerignore line 3 \("\[abc"\): syntax error in pattern$/);
    refuses("a\n[Local-Only]/\n", /line 2 .*invalid character class range/);
    refuses("ok\n!\n", /line 2 \("!"\): illegal exclusion pattern: "!"/);
  });

  it("refuses a line of 64 KiB or more, as bufio.Scanner does", () => {
    assert.doesNotThrow(() => new IgnoreMatcher(`${"a".repeat(65535)}\nb`));
    refuses(`b\n${"a".repeat(65536)}`, /line 2 .*line too long/);
    refuses(`${"a".repeat(65535)}\r\nb`, /line 1 .*line too long/);
  });

  it("refuses \\p and \\P, Unicode classes whose names depend on Docker's Go version", () => {
    refuses("a\\pL*", /does not support \\p/);
  });
});

describe("IgnoreMatcher.canSkipFolder (BuildKit's rule)", () => {
  const skips = (text: string, folders: Record<string, boolean>): void => {
    const matcher = new IgnoreMatcher(text);
    assert.deepEqual(
      Object.fromEntries(Object.keys(folders).map((f) => [f, matcher.canSkipFolder(f)])),
      folders,
    );
  };

  it("skips any excluded folder when there are no exceptions", () => {
    skips("node_modules", { node_modules: true });
  });

  it("does not skip a folder an exception names a path inside of", () => {
    skips("node_modules\nbuild\n!node_modules/keep.js", {
      node_modules: false,
      build: true,
      node_modules_old: true,
    });
    skips("a\n!a/b/c.txt", { a: false, "a/b": false });
  });

  it("compares exceptions less a trailing /** or /*", () => {
    skips("x\n!x/**", { x: false, y: true });
    skips("a\n!a/b/*", { a: false, "a/b": false, "a/c": true, b: true });
  });

  it("skips no folder once an exception has a wildcard, class or escape", () => {
    skips("vendor\ncache\n!*/keep.txt", { vendor: false, cache: false, build: false });
    skips("build\n!**/*.keep", { build: false });
    skips("*\n!src/*.ts", { lib: false, src: false });
    skips("build\n!x\\.y", { build: false });
  });
});

async function tarNames(stream: Readable): Promise<string[]> {
  const extract = tar.extract();
  stream.pipe(extract);
  const names: string[] = [];
  for await (const entry of extract) {
    names.push(entry.header.name);
    entry.resume();
  }
  return names;
}

describe("packBuildContext with Docker's matching", () => {
  it("walks into an excluded folder a wildcard exception re-includes from", async () => {
    const root = mkdtempSync(join(tmpdir(), "vm-ignore-"));
    try {
      mkdirSync(join(root, "vendor", "deep"), { recursive: true });
      writeFileSync(join(root, "Dockerfile"), "FROM alpine\n");
      writeFileSync(join(root, "vendor", "keep.txt"), "k\n");
      writeFileSync(join(root, "vendor", "drop.txt"), "d\n");
      writeFileSync(join(root, "vendor", "deep", "keep.txt"), "k\n");
      writeFileSync(join(root, ".dockerignore"), "vendor\n!*/keep.txt\n");
      const packed = await packBuildContext(root, join(root, "Dockerfile"));
      assert.deepEqual(await tarNames(packed.stream), [".dockerignore", "Dockerfile", "vendor/keep.txt"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("refuses to pack a context whose .dockerignore Docker would refuse", async () => {
    const root = mkdtempSync(join(tmpdir(), "vm-ignore-"));
    try {
      writeFileSync(join(root, "Dockerfile"), "FROM alpine\n");
      writeFileSync(join(root, ".dockerignore"), "node_modules\n[\n");
      await assert.rejects(packBuildContext(root, join(root, "Dockerfile")), /\.dockerignore line 2/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
