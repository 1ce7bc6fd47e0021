import { homedir } from "node:os";
import { join } from "node:path";
import { services } from "../../cli/context.ts";
import type { CommandDef } from "../../cli/command.ts";
import { confirm } from "../../cli/prompt.ts";
import { Progress, formatDuration } from "../../cli/progress.ts";
import { VmError } from "../../errors.ts";
import { withRemoteOptions, remoteOptions } from "./shared.ts";

export const snapshotImportCommand: CommandDef = {
  path: ["snapshot", "import"],
  summary: "Import a snapshot file (or - for standard input) as a global snapshot, checking every byte",
  configure: (cmd) =>
    withRemoteOptions(cmd)
      .argument("<file>", "the snapshot file, an https:// URL, an s3:// path, or - to read standard input")
      .option("--name <name>", "import under another name")
      .option("--verify", "check the whole file before touching the engine at all")
      .option("-f, --force", "replace a snapshot of that name (only once the new one is complete)")
      .option("-y, --yes", "do not ask; import even when the platform differs")
      .option(
        "--require-signature",
        "accept only files signed by a trusted key ($XDG_CONFIG_HOME/vm/trusted_keys, --trusted-key)",
      )
      .option("--trusted-key <file...>", "also trust the ssh-ed25519 public keys in this file"),
  run: async (ctx, args, options) => {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(args[0]!)?.[1];
    if (scheme && !/^(https?|s3)$/i.test(scheme)) {
      throw new VmError(
        "URL_NOT_SUPPORTED",
        `vm cannot read snapshot files from ${scheme}:// locations yet: ${args[0]!}`,
        {
          hint: "Download it first with the store's own tool and import the local file, or stream it: TOOL ... | vm snapshot import -",
        },
      );
    }
    const progress = new Progress(ctx.io.stderr, `Importing ${args[0]!}`);
    const interactive = ctx.io.stdin.isTTY === true && ctx.io.stderr.isTTY === true && args[0] !== "-";
    const started = Date.now();
    const { importSnapshot } = await import("../../snapshot/transfer/import.ts");
    const result = await importSnapshot(services(ctx), {
      input: args[0]!,
      stdin: ctx.io.stdin,
      cwd: ctx.cwd,
      ...(typeof options.name === "string" ? { name: options.name } : {}),
      force: options.force === true,
      verify: options.verify === true,
      yes: options.yes === true,
      requireSignature: options.requireSignature === true,
      trustedKeys: (options.trustedKey as string[] | undefined) ?? [],
      confirm: interactive
        ? (question) => {
            progress.finish();
            return confirm(ctx.io, question);
          }
        : undefined,
      onStart: ({ total }) => {
        if (total !== undefined) progress.setTotal(total);
      },
      onBytes: (n) => progress.tick(n),
      onWarning: (text) => ctx.io.stderr.write(text),
      spoolDir: join(ctx.env.XDG_CACHE_HOME || join(ctx.env.HOME || homedir(), ".cache"), "vm"),
      remote: remoteOptions(ctx, options),
    });
    progress.finish();
    const how = result.legacy
      ? result.legacy
      : result.loaded
        ? "loaded and verified"
        : options.verify === true
          ? "the whole file was verified first; the engine already had this image, so it was not loaded again"
          : result.readWhole
            ? "verified; the engine already had this image, so it was not loaded again"
            : "the engine already had this image, so only the file's head was read and checked; vm snapshot verify checks all of it";
    return {
      text:
        `Imported snapshot @${result.name} (${how}) in ${formatDuration(Date.now() - started)}\n` +
        (result.signer
          ? `  signed by ${result.signer.fingerprint}${result.signer.comment ? ` (${result.signer.comment})` : ""}\n`
          : "") +
        `  use it in vm.yaml: vm.box: "@${result.name}"\n`,
    };
  },
};
