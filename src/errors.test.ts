import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Unreachable, requestFailed } from "./engine/errors.ts";
import { ExitCode, VmError, errorCodes, isVmError } from "./errors.ts";

const root = new URL("..", import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), "utf8");
const sorted = (values: Iterable<number>): number[] => [...new Set(values)].sort((a, b) => a - b);

/** Every exit code vm can leave with by itself: success and the ExitCode values. */
const exitCodes = sorted([0, ...Object.values(ExitCode)]);

/** The codes of the "## Exit codes" table in docs/user-guide.md. */
function userGuideTable(): number[] {
  const text = read("docs/user-guide.md");
  const section = text.slice(text.indexOf("\n## Exit codes\n"));
  assert.ok(section.length > 0, "docs/user-guide.md has no ## Exit codes section");
  const body = section.slice(0, section.indexOf("\n\n", section.indexOf("| code")));
  return [...body.matchAll(/^\| (\d+) +\|/gm)].map((m) => Number(m[1]));
}

/** The codes of README.md's one-line list, "Exit codes: 0 success, 1 failure, ...;". */
function readmeList(): number[] {
  const line = /Exit codes: ([^;]+);/.exec(read("README.md"));
  assert.ok(line, "README.md has no 'Exit codes: ...;' list");
  return [...line[1]!.matchAll(/(?:^|, )(\d+) /g)].map((m) => Number(m[1]));
}

/** Every file of src/ but errors.ts that is not a test or test support, with its text. */
function sources(): { path: string; text: string }[] {
  const dir = new URL("src/", root);
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((path) => path.endsWith(".ts") && !path.endsWith(".test.ts") && !path.includes("testing/"))
    .filter((path) => path !== "errors.ts")
    .map((path) => ({ path, text: readFileSync(join(dir.pathname, path), "utf8") }));
}

describe("error codes", () => {
  it("docs/user-guide.md's exit-code table lists exactly the exit codes vm has", () => {
    const table = userGuideTable();
    assert.deepEqual(table, sorted(table), "the table is in order, each code once");
    assert.deepEqual(table, exitCodes);
  });

  it("README.md's exit-code list is the same", () => {
    assert.deepEqual(readmeList(), exitCodes);
  });

  it("every error code leaves with an exit code the docs list", () => {
    const documented = new Set(userGuideTable());
    for (const [code, exit] of Object.entries(errorCodes))
      assert.ok(documented.has(exit), `${code} exits ${exit}, which docs/user-guide.md does not list`);
  });

  it("every error code in the table is raised somewhere in src/", () => {
    const all = sources()
      .map((s) => s.text)
      .join("\n");
    const used = new Set([...all.matchAll(/"([A-Z][A-Z0-9_]+)"/g)].map((m) => m[1]!));
    // yaml-source.ts builds `${kind.code}_SYNTAX` and `${kind.code}_INVALID` from each kind's `code: "CONFIG"`.
    const prefixes = [...all.matchAll(/code: "([A-Z]+)"/g)].map((m) => m[1]!);
    for (const suffix of new Set([...all.matchAll(/`\$\{kind\.code\}(_[A-Z]+)`/g)].map((m) => m[1]!)))
      for (const prefix of prefixes) used.add(prefix + suffix);
    const unused = Object.keys(errorCodes).filter((code) => !used.has(code));
    assert.deepEqual(unused, [], "codes in errorCodes that nothing raises: remove them");
  });

  it("a VmError's exit code is its code's", () => {
    const error = new VmError("SNAPSHOT_NOT_FOUND", "gone", { hint: "import it" });
    assert.equal(error.exitCode, ExitCode.notFound);
    assert.equal(error.hint, "import it");
    assert.ok(isVmError(error, "SNAPSHOT_NOT_FOUND"));
    assert.ok(!isVmError(error, "ENV_NOT_FOUND"));
    assert.equal(new Unreachable("ENGINE_CONNECTION_LOST", "lost").exitCode, ExitCode.engine);
    assert.equal(requestFailed(500, "boom", "Starting x").exitCode, ExitCode.failure);
  });
});
