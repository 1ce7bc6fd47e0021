import { dirname } from "node:path";
import { services } from "../../cli/context.ts";
import type { CommandDef } from "../../cli/command.ts";
import { ExitCode } from "../../errors.ts";
import { snapshotProject } from "./shared.ts";

/** A name of a registered snapshot, or a snapshot file: a path with a slash or a snapshot file's extension. */
const looksLikeFile = (arg: string): boolean =>
  arg === "-" || arg.includes("/") || /\.(?:tar|tgz|gz|zst)$/.test(arg);

export const snapshotScanCommand: CommandDef = {
  path: ["snapshot", "scan"],
  summary: "Look for likely secrets in a snapshot or a snapshot file (exit 8 when something is found)",
  usesConfig: true,
  json: true,
  configure: (cmd) =>
    cmd
      .argument("<name|file>", "a snapshot (@name: the global one), or a snapshot file; - for standard input")
      .option(
        "--allow <pattern>",
        "a finding known to be fine: a path glob, a file name or a kind; repeatable (also: secrets.ignore)",
        (value: string, previous: string[]) => [...previous, value],
        [] as string[],
      ),
  run: async (ctx, args, options) => {
    const target = args[0]!;
    const { formatFindings } = await import("../../snapshot/transfer/export.ts");
    const { allowPatterns, withoutAllowed } = await import("../../secret-scan/allow.ts");
    const scan = await import("../../snapshot/transfer/scan.ts");
    const result = looksLikeFile(target)
      ? await scan.scanFile(target, ctx.cwd, ctx.io.stdin)
      : await scan.scanSnapshot(services(ctx), {
          name: target,
          project: (await snapshotProject(ctx, target, false))?.name,
        });
    const patterns = await allowPatterns(
      dirname(services(ctx).snapshots.root),
      (options.allow as string[] | undefined) ?? [],
    );
    const { findings, allowed } = withoutAllowed(result.findings, patterns);
    const shown = result.target === "-" ? "standard input" : result.target;
    const notes =
      (allowed > 0 ? `  ${allowed} finding(s) allowed by secrets.ignore or --allow\n` : "") +
      (result.skippedLayers > 0
        ? `  ${result.skippedLayers} layer(s) could not be read and were not scanned\n`
        : "");
    return {
      json: { target: result.target, findings, allowed, skipped_layers: result.skippedLayers },
      text:
        (findings.length === 0
          ? `No likely secrets in ${shown}\n`
          : `${findings.length} likely secret(s) in ${shown}; whoever gets it can read them:\n${formatFindings(findings)}\n` +
            "  remove them and create the snapshot again, or allow what is known to be fine (--allow PATTERN, secrets.ignore)\n") +
        notes,
      exitCode: findings.length === 0 ? 0 : ExitCode.secretsFound,
    };
  },
};
