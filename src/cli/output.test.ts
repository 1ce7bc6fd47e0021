import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VmError } from "../errors.ts";
import { ago, formatError, table } from "./output.ts";

describe("table", () => {
  it("aligns columns under the header, three spaces apart, without padding the last column", () => {
    assert.equal(
      table(
        ["NAME", "STATE", "BOX"],
        [
          ["demo", "running", "debian:bookworm"],
          ["a-much-longer-name", "exited", "@base"],
        ],
      ),
      "NAME                 STATE     BOX\n" +
        "demo                 running   debian:bookworm\n" +
        "a-much-longer-name   exited    @base\n",
    );
  });

  it("prints only the header when there are no rows", () => {
    assert.equal(table(["NAME", "STATE"], []), "NAME   STATE\n");
  });

  it("treats missing cells as empty and trims trailing spaces", () => {
    assert.equal(table(["A", "B", "C"], [["x"], ["yy", "z", ""]]), "A    B   C\nx\nyy   z\n");
  });
});

describe("formatError", () => {
  it("prints a VmError's message and hint", () => {
    const error = new VmError("CONFIG_INVALID", "vm.yaml is invalid", { hint: "Fix it" });
    assert.equal(formatError(error, false), "Error: vm.yaml is invalid\nHint: Fix it\n");
  });

  it("prints a VmError without a hint as one line", () => {
    assert.equal(formatError(new VmError("BUILD_FAILED", "broken"), false), "Error: broken\n");
  });

  it("adds the code and stack of a VmError in debug mode", () => {
    const error = new VmError("ENGINE_UNAVAILABLE", "no engine", { hint: "start it" });
    const out = formatError(error, true);
    assert.ok(
      out.startsWith("Error: no engine\nHint: start it\n(code ENGINE_UNAVAILABLE)\nVmError: no engine\n"),
      out,
    );
  });

  it("prints a plain Error as an internal error with a hint to rerun with VM_DEBUG", () => {
    assert.equal(
      formatError(new TypeError("x is undefined"), false),
      "Error: internal error: x is undefined\nHint: Run again with VM_DEBUG=1 for details, and report it\n",
    );
  });

  it("prints a plain Error's stack instead of the hint in debug mode", () => {
    const error = new Error("boom");
    assert.equal(formatError(error, true), `Error: internal error: boom\n${error.stack}\n`);
  });

  it("prints a thrown non-Error value as an internal error", () => {
    assert.equal(
      formatError("just a string", false),
      "Error: internal error: just a string\nHint: Run again with VM_DEBUG=1 for details, and report it\n",
    );
    assert.equal(
      formatError(42, true),
      "Error: internal error: 42\nHint: Run again with VM_DEBUG=1 for details, and report it\n",
    );
  });
});

describe("ago", () => {
  const now = new Date("2025-06-01T12:00:00Z");
  const before = (seconds: number) => ago(new Date(now.getTime() - seconds * 1000), now);

  it("counts seconds below a minute", () => {
    assert.equal(before(0), "0 seconds ago");
    assert.equal(before(42), "42 seconds ago");
    assert.equal(before(59), "59 seconds ago");
  });

  it("says a date in the future is 0 seconds ago", () => {
    assert.equal(before(-30), "0 seconds ago");
  });

  it("counts minutes below an hour, singular for one", () => {
    assert.equal(before(60), "1 minute ago");
    assert.equal(before(89), "1 minute ago");
    assert.equal(before(90), "2 minutes ago");
    assert.equal(before(59 * 60), "59 minutes ago");
  });

  it("counts hours below two days, singular for one", () => {
    assert.equal(before(3600), "1 hour ago");
    assert.equal(before(5 * 3600), "5 hours ago");
    assert.equal(before(47 * 3600), "47 hours ago");
  });

  it("counts days from two days on", () => {
    assert.equal(before(48 * 3600), "2 days ago");
    assert.equal(before(10 * 86400), "10 days ago");
  });

  it("uses the current time when no `now` is given", () => {
    assert.equal(ago(new Date(Date.now() - 5 * 60_000)), "5 minutes ago");
  });

  it("says '1 second ago', singular, as it does for minutes and hours", () => {
    assert.equal(before(1), "1 second ago");
  });
});
