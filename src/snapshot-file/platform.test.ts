import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { normalizeArch } from "../engine/platform.ts";
import { ExitCode } from "../errors.ts";
import { checkPlatform } from "../snapshot/transfer/import-checks.ts";
import type { ImportOptions } from "../snapshot/transfer/import.ts";
import { rejectsVm } from "./testing/assert.ts";

/** The import's options as far as the platform question uses them: --yes, a terminal to ask on, warnings. */
function options(fields: { yes?: boolean; answer?: boolean }) {
  const warnings: string[] = [];
  const questions: string[] = [];
  const opts: ImportOptions = {
    input: "x.snapshot.tar.gz",
    stdin: Readable.from([]),
    cwd: "/",
    force: false,
    verify: false,
    confirm:
      fields.answer === undefined
        ? undefined
        : async (question) => {
            questions.push(question);
            return fields.answer!;
          },
    yes: fields.yes ?? false,
    requireSignature: false,
    trustedKeys: [],
    onStart: () => {},
    onBytes: () => {},
    onWarning: (text) => void warnings.push(text),
    spoolDir: "/nonexistent",
  };
  return { opts, warnings, questions };
}

describe("checkPlatform: a snapshot built for another platform", () => {
  it("passes quietly when the file's os/architecture is the engine's, whatever the variant", async () => {
    for (const [file, engine] of [
      ["linux/amd64", "linux/amd64"],
      ["linux/arm64/v8", "linux/arm64"],
      ["linux/arm/v7", "linux/arm"],
      ["linux/amd64", `linux/${normalizeArch("x86_64")}`],
      ["linux/arm64", `linux/${normalizeArch("aarch64")}`],
    ]) {
      const { opts, warnings, questions } = options({ answer: false });
      await checkPlatform(file!, engine!, opts);
      assert.deepEqual([warnings, questions], [[], []], `${file} on ${engine}`);
    }
  });

  it("refuses without a terminal to ask on, naming both platforms and --yes", async () => {
    for (const [file, engine] of [
      ["linux/arm64", "linux/amd64"],
      ["linux/amd64", "linux/arm64"],
      ["windows/amd64", "linux/amd64"],
      ["linux/amd64", "linux/x86_64"],
    ]) {
      const { opts, warnings } = options({});
      const error = await rejectsVm(checkPlatform(file!, engine!, opts), {
        code: "PLATFORM_MISMATCH",
        exitCode: ExitCode.failure,
        message: new RegExp(
          `^Snapshot built for ${file}, current platform is ${engine}; refusing without a terminal to ask on$`,
        ),
      });
      assert.equal(error.hint, "Pass --yes to import it anyway");
      assert.deepEqual(warnings, []);
    }
  });

  it("with --yes, imports anyway and warns, naming both platforms", async () => {
    const { opts, warnings } = options({ yes: true, answer: false });
    await checkPlatform("linux/arm64", "linux/amd64", opts);
    assert.deepEqual(warnings, [
      "Warning: Snapshot built for linux/arm64, current platform is linux/amd64\nThis may not work correctly.\n",
    ]);
  });

  it("on a terminal, asks; yes imports, no cancels with nothing imported", async () => {
    const yes = options({ answer: true });
    await checkPlatform("linux/arm64", "linux/amd64", yes.opts);
    assert.equal(yes.questions.length, 1);
    assert.match(
      yes.questions[0]!,
      /^Warning: Snapshot built for linux\/arm64, current platform is linux\/amd64\n.*Continue\?$/s,
    );
    const no = options({ answer: false });
    await rejectsVm(checkPlatform("linux/arm64", "linux/amd64", no.opts), {
      code: "IMPORT_CANCELLED",
      exitCode: ExitCode.failure,
      message: /^Import cancelled: nothing was imported$/,
    });
  });
});
