import { services } from "../cli/context.ts";
import type { CommandDef } from "../cli/command.ts";
import { ExitCode } from "../errors.ts";
import { snapshotProject } from "./snapshot-shared.ts";

/** A name of a registered snapshot, or a snapshot file: a path with a slash or a snapshot file's extension. */
const looksLikeFile = (arg: string): boolean =>
  arg === "-" || arg.includes("/") || /\.(?:tar|tgz|gz|zst)$/.test(arg);

export const snapshotScanCommand: CommandDef = {
  path: ["snapshot", "scan"],
  summary: "Look for likely secrets in a snapshot or a snapshot file (exit 8 when something is found)",
  usesConfig: true,
  json: true,
  configure: (cmd) =>
    cmd.argument(
      "<name|file>",
      "a snapshot (@name: the global one), or a snapshot file; - for standard input",
    ),
  run: async (ctx, args) => {
    const target = args[0]!;
    const { formatFindings } = await import("../snapshot/export.ts");
    const scan = await import("../snapshot/scan.ts");
    const result = looksLikeFile(target)
      ? await scan.scanFile(target, ctx.cwd, ctx.io.stdin)
      : await scan.scanSnapshot(services(ctx), {
          name: target,
          project: (await snapshotProject(ctx, target, false))?.name,
        });
    const shown = result.target === "-" ? "standard input" : result.target;
    const skipped =
      result.skippedLayers > 0
        ? `  ${result.skippedLayers} layer(s) could not be read and were not scanned\n`
        : "";
    const found = result.findings.length;
    return {
      json: { target: result.target, findings: result.findings, skipped_layers: result.skippedLayers },
      text:
        (found === 0
          ? `No likely secrets in ${shown}\n`
          : `${found} likely secret(s) in ${shown}; whoever gets it can read them:\n${formatFindings(result.findings)}\n` +
            `  remove them and create the snapshot again; docs/security.md lists what the scan looks for\n`) +
        skipped,
      exitCode: found === 0 ? 0 : ExitCode.secretsFound,
    };
  },
};
