import { services } from "../../cli/context.ts";
import type { CommandDef } from "../../cli/command.ts";
import { formatDuration } from "../../cli/progress.ts";
import { snapshotProject } from "./shared.ts";
import { layerProgress, layerSummary } from "./registry-progress.ts";
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { Progress } from "../../cli/progress.ts";
import type { CommandContext, CommandResult } from "../../cli/context.ts";
import { VmError } from "../../errors.ts";

export const snapshotPushCommand: CommandDef = {
  path: ["snapshot", "push"],
  summary: "Push a snapshot to an OCI registry: the image as `docker pull` sees it, vm's metadata beside it",
  usesConfig: true,
  json: true,
  configure: (cmd) =>
    cmd
      .argument(
        "<name>",
        "snapshot name (@name: the global one), or a snapshot file (pushed without an engine)",
      )
      .argument("<ref>", "where to push it: registry/repository:tag (e.g. ghcr.io/acme/vibe:2024-10)")
      .option(
        "--sign <key>",
        "sign vm's metadata with this ed25519 private key (OpenSSH format, e.g. ~/.ssh/id_ed25519)",
      ),
  run: async (ctx, args, options) => {
    const [name, target] = [args[0]!, args[1]!];
    if (isSnapshotFile(ctx.cwd, name)) {
      if (typeof options.sign === "string")
        throw new VmError(
          "USAGE",
          "--sign signs a snapshot pushed from the store; a file keeps the signature it has",
          {
            hint: "Sign the file when exporting it: vm snapshot export NAME --sign KEY",
          },
        );
      return pushFile(ctx, name, target);
    }
    const project = (await snapshotProject(ctx, name))?.name;
    const progress = layerProgress(ctx.io, `Pushing ${name}`, "pushed");
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
        `  ${whereMetadata(result.referrers, result.digest)}\n` +
        `  on another machine: vm snapshot pull ${result.ref}\n` +
        `  or in vm.yaml:      vm.box: "@${result.ref}"\n`,
    };
  },
};

/** A path to a file (not `@name`, which is always a snapshot): pushed without an engine. */
function isSnapshotFile(cwd: string, input: string): boolean {
  if (input.startsWith("@")) return false;
  try {
    return statSync(resolve(cwd, input)).isFile();
  } catch {
    return false;
  }
}

async function pushFile(ctx: CommandContext, file: string, target: string): Promise<CommandResult> {
  let progress = new Progress(ctx.io.stderr, `Verifying ${file}`);
  const started = Date.now();
  const { pushSnapshotFile } = await import("../../snapshot/registry/push-file.ts");
  const result = await pushSnapshotFile({
    file,
    target,
    cwd: ctx.cwd,
    stdin: ctx.io.stdin,
    env: ctx.env,
    onPhase: (phase, total) => {
      progress.finish();
      progress = new Progress(
        ctx.io.stderr,
        phase === "verifying" ? `Verifying ${file}` : `Uploading to ${target}`,
        total,
      );
    },
    onBytes: (n) => progress.tick(n),
  });
  progress.finish();
  return {
    json: result,
    text:
      `Pushed ${file} to ${result.ref} (verified first; ${layerSummary(result.layers, "uploaded")}) in ${formatDuration(Date.now() - started)}\n` +
      `  digest ${result.digest}; vm's metadata ${result.metadataPresent ? "was already there" : "pushed"} (${result.metadataDigest})` +
      `${result.signedBy ? `, signed by ${result.signedBy}` : ", unsigned"}\n` +
      `  ${whereMetadata(result.referrers, result.digest)}\n` +
      `  on another machine: vm snapshot pull ${result.ref}\n` +
      `  or in vm.yaml:      vm.box: "@${result.ref}"\n`,
  };
}

/** How a pull finds the metadata, said plainly: the referrers API, or the tag scheme where there is none. */
function whereMetadata(via: "api" | "tag", digest: string): string {
  return via === "api"
    ? "the metadata is found through the registry's referrers API"
    : `this registry has no referrers API: the metadata is found through the tag ${digest.replace(":", "-")}`;
}
