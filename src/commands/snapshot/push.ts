import { services } from "../../cli/context.ts";
import type { CommandDef } from "../../cli/command.ts";
import { formatDuration } from "../../cli/progress.ts";
import { snapshotProject } from "./shared.ts";
import { layerProgress, layerSummary } from "./registry-progress.ts";

export const snapshotPushCommand: CommandDef = {
  path: ["snapshot", "push"],
  summary: "Push a snapshot to an OCI registry: the image as `docker pull` sees it, vm's metadata beside it",
  usesConfig: true,
  json: true,
  configure: (cmd) =>
    cmd
      .argument("<name>", "snapshot name (@name: the global one)")
      .argument("<ref>", "where to push it: registry/repository:tag (e.g. ghcr.io/acme/vibe:2024-10)")
      .option(
        "--sign <key>",
        "sign vm's metadata with this ed25519 private key (OpenSSH format, e.g. ~/.ssh/id_ed25519)",
      ),
  run: async (ctx, args, options) => {
    const [name, target] = [args[0]!, args[1]!];
    const project = (await snapshotProject(ctx, name))?.name;
    const progress = layerProgress(ctx.io, `Pushing ${name} to ${target}`);
    const started = Date.now();
    const { pushSnapshot } = await import("../../snapshot/registry/push.ts");
    const result = await pushSnapshot(services(ctx), {
      name,
      project,
      target,
      cwd: ctx.cwd,
      ...(typeof options.sign === "string" ? { sign: options.sign } : {}),
      onProgress: (tally) => progress.update(tally),
    });
    progress.finish();
    return {
      json: result,
      text:
        `Pushed ${result.name} to ${result.ref} (${layerSummary(result.layers, "pushed")}) in ${formatDuration(Date.now() - started)}\n` +
        `  digest ${result.digest}; vm's metadata ${result.metadataPresent ? "was already there" : "pushed"} (${result.metadataDigest})` +
        `${result.signedBy ? `, signed by ${result.signedBy}` : ""}\n` +
        `  on another machine: vm snapshot pull ${result.ref}\n` +
        `  or in vm.yaml:      vm.box: "@${result.ref}"\n`,
    };
  },
};
