import { services } from "../../cli/context.ts";
import type { CommandDef } from "../../cli/command.ts";
import { confirm } from "../../cli/prompt.ts";
import { formatDuration } from "../../cli/progress.ts";
import { layerProgress, layerSummary } from "./registry-progress.ts";

export const snapshotPullCommand: CommandDef = {
  path: ["snapshot", "pull"],
  summary: "Pull a snapshot from an OCI registry as a global snapshot, checking its metadata and image",
  json: true,
  configure: (cmd) =>
    cmd
      .argument("<ref>", "registry/repository:tag or registry/repository@sha256:...")
      .option("--name <name>", "pull under another name (default: the name it was pushed with)")
      .option("-f, --force", "replace a snapshot of that name (only once the new one is complete)")
      .option("-y, --yes", "do not ask; pull even when the platform differs")
      .option(
        "--require-signature",
        "accept only snapshots signed by a trusted key ($XDG_CONFIG_HOME/vm/trusted_keys, --trusted-key)",
      )
      .option("--trusted-key <file...>", "also trust the ssh-ed25519 public keys in this file"),
  run: async (ctx, args, options) => {
    const source = args[0]!;
    const progress = layerProgress(ctx.io, `Pulling ${source}`, "pulled");
    const interactive = ctx.io.stdin.isTTY === true && ctx.io.stderr.isTTY === true;
    const started = Date.now();
    const { pullSnapshot } = await import("../../snapshot/registry/pull.ts");
    const result = await pullSnapshot(services(ctx), {
      source,
      ...(typeof options.name === "string" ? { name: options.name } : {}),
      force: options.force === true,
      yes: options.yes === true,
      requireSignature: options.requireSignature === true,
      trustedKeys: (options.trustedKey as string[] | undefined) ?? [],
      cwd: ctx.cwd,
      confirm: interactive
        ? (question) => {
            progress.finish();
            return confirm(ctx.io, question);
          }
        : undefined,
      onProgress: (tally) => progress.update(tally),
      onWarning: (text) => ctx.io.stderr.write(text),
    });
    progress.finish();
    const how = result.pulled
      ? layerSummary(result.layers, "pulled")
      : "the engine already had this image, so no layer was pulled";
    return {
      json: {
        name: result.name,
        ref: result.ref,
        digest: result.digest,
        pulled: result.pulled,
        layers: result.layers,
        replaced: result.replaced,
        plain: result.plain,
        signer: result.signer ?? null,
      },
      text:
        `Pulled snapshot @${result.name} from ${result.ref} (${how}; ${result.plain ? "a plain image, no vm metadata" : "metadata and image verified"}) in ${formatDuration(Date.now() - started)}\n` +
        (result.signer
          ? `  signed by ${result.signer.fingerprint}${result.signer.comment ? ` (${result.signer.comment})` : ""}\n`
          : "") +
        `  use it in vm.yaml: vm.box: "@${result.name}"\n`,
    };
  },
};
