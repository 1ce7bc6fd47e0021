import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { VmError } from "../errors.ts";
import { signaturePolicy } from "../snapshot-file/signing.ts";
import { loadSettings, parseSettings } from "./settings.ts";

const FILE = "/home/me/.config/vm/settings.yaml";

function errorOf(text: string): VmError {
  try {
    parseSettings(text, FILE);
  } catch (error) {
    assert.ok(error instanceof VmError, String(error));
    assert.equal(error.exitCode, 3);
    assert.match(error.hint ?? "", /require_signature: true/);
    return error;
  }
  assert.fail("expected parseSettings to throw");
}

describe("parseSettings", () => {
  it("reads require_signature", () => {
    assert.deepEqual(parseSettings("require_signature: true\n", FILE), { require_signature: true });
    assert.deepEqual(parseSettings("require_signature: false\n", FILE), { require_signature: false });
  });

  it("takes an empty file, or one of comments, as the defaults", () => {
    assert.deepEqual(parseSettings("", FILE), {});
    assert.deepEqual(parseSettings("# nothing yet\n", FILE), {});
  });

  it("refuses a require_signature that is not a boolean, naming the file and line", () => {
    const error = errorOf("# team policy\nrequire_signature: yes\n");
    assert.equal(error.code, "SETTINGS_INVALID");
    assert.equal(
      error.message,
      `${FILE} is invalid:\n  line 2, require_signature: expected true or false (got "yes")`,
    );
    assert.match(
      errorOf("require_signature: 1\n").message,
      /line 1, require_signature: expected true or false \(got 1\)/,
    );
    assert.match(
      errorOf("require_signature:\n").message,
      /line 1, require_signature: expected true or false \(got null\)/,
    );
  });

  it("refuses an unknown key, suggesting the close one", () => {
    assert.equal(
      errorOf("require_signatures: true\n").message,
      `${FILE} is invalid:\n  line 1, require_signatures: unknown field (did you mean require_signature?)`,
    );
    assert.match(errorOf("colour: blue\n").message, /line 1, colour: unknown field$/);
  });

  it("refuses a file that is not YAML, with the line", () => {
    const error = errorOf("require_signature: [true\n");
    assert.equal(error.code, "SETTINGS_SYNTAX");
    assert.match(
      error.message,
      /^\/home\/me\/\.config\/vm\/settings\.yaml is not valid YAML:\n {2}line \d+, column \d+: /,
    );
  });

  it("refuses a file that is not a map", () => {
    assert.match(
      errorOf("- require_signature\n").message,
      /line 1, the file: expected a mapping of settings/,
    );
  });
});

describe("loadSettings and signaturePolicy", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vm-settings-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const home = (name: string, settings?: string) => {
    const configDir = join(dir, name);
    mkdirSync(configDir, { recursive: true });
    if (settings !== undefined) writeFileSync(join(configDir, "settings.yaml"), settings);
    return configDir;
  };

  it("uses the defaults without a settings.yaml", async () => {
    assert.deepEqual(await loadSettings(join(dir, "nowhere", "settings.yaml")), {});
    assert.equal((await signaturePolicy(home("none"), false, [])).require, false);
    assert.equal((await signaturePolicy(home("none"), true, [])).require, true);
  });

  it("requires signatures when settings.yaml says so, or the flag does", async () => {
    assert.equal((await signaturePolicy(home("on", "require_signature: true\n"), false, [])).require, true);
    assert.equal((await signaturePolicy(home("off", "require_signature: false\n"), true, [])).require, true);
    assert.equal(
      (await signaturePolicy(home("off2", "require_signature: false\n"), false, [])).require,
      false,
    );
  });

  it("fails, instead of turning signatures off, on a settings.yaml it cannot read as settings", async () => {
    for (const [name, text, code] of [
      ["yes", "require_signature: yes\n", "SETTINGS_INVALID"],
      ["typo", "require_signatures: true\n", "SETTINGS_INVALID"],
      ["broken", "require_signature: [\n", "SETTINGS_SYNTAX"],
    ] as const) {
      const configDir = home(name, text);
      await assert.rejects(signaturePolicy(configDir, false, []), (error: unknown) => {
        assert.ok(error instanceof VmError);
        assert.equal(error.code, code);
        assert.equal(error.exitCode, 3);
        assert.ok(error.message.startsWith(`${join(configDir, "settings.yaml")} is `), error.message);
        return true;
      });
    }
  });

  it("fails on a settings.yaml that cannot be read", async (t) => {
    if (process.getuid?.() === 0) return t.skip("root reads every file");
    const configDir = home("unreadable", "require_signature: true\n");
    chmodSync(join(configDir, "settings.yaml"), 0o000);
    await assert.rejects(loadSettings(join(configDir, "settings.yaml")), {
      code: "SETTINGS_UNREADABLE",
      exitCode: 3,
    });
  });

  it("fails on a settings.yaml that is a folder", async () => {
    const configDir = home("folder");
    mkdirSync(join(configDir, "settings.yaml"));
    await assert.rejects(loadSettings(join(configDir, "settings.yaml")), {
      code: "SETTINGS_UNREADABLE",
      exitCode: 3,
    });
  });
});
