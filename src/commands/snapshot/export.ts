import { join } from "node:path";
import { homedir } from "node:os";
import { services } from "../../cli/context.ts";
import type { CommandDef } from "../../cli/command.ts";
import { Progress, formatDuration } from "../../cli/progress.ts";
import { compressionForPath, type Compression } from "../../lib/compression.ts";
import { formatBytes } from "../../lib/units.ts";
import { VmError } from "../../errors.ts";
import { snapshotProject } from "./shared.ts";

export const snapshotExportCommand: CommandDef = {
  path: ["snapshot", "export"],
  summary: "Write a snapshot to one verified, portable file (gzip by default; zstd; or plain tar)",
  usesConfig: true,
  configure: (cmd) =>
    cmd
      .argument("<name>", "snapshot name (@name: the global one)")
      .option(
        "-o, --output <file>",
        "where to write it: a path, s3://bucket/key, or - for standard output (default ./<name>.snapshot.tar.gz)",
      )
      .option("--endpoint <url>", "for s3:// outputs: an S3-compatible store's URL (or AWS_ENDPOINT_URL_S3)")
      .option("--path-style", "for s3:// outputs: the bucket in the URL's path, not its host name")
      .option("--compression <kind>", "gzip, zstd or none (default: from --output's extension, else gzip)")
      .option("--compress <level>", "compression level: 1-9 for gzip (default 6), 1-19 for zstd (default 3)")
      .option(
        "--include-volumes",
        "also carry the project's named volumes; environments created from the import start with their data",
      )
      .option("--fail-on-secrets", "refuse to export when the image holds likely secrets")
      .option(
        "--allow <pattern>",
        "a finding known to be fine: a path glob, a file name or a kind; repeatable (also: secrets.ignore)",
        (value: string, previous: string[]) => [...previous, value],
        [] as string[],
      )
      .option(
        "--sign <key>",
        "sign the file with this ed25519 private key (OpenSSH format, e.g. ~/.ssh/id_ed25519)",
      ),
  run: async (ctx, args, options) => {
    const output = options.output as string | undefined;
    if (output !== undefined) refuseUrl(output, "--output");
    const compression = chooseCompression(options.compression as string | undefined, output);
    const level = parseLevel(options.compress as string | undefined, compression);
    const project = (await snapshotProject(ctx, args[0]!, options.includeVolumes === true))?.name;
    const progress = new Progress(ctx.io.stderr, `Exporting ${args[0]!}`);
    const started = Date.now();
    const { exportSnapshot, formatFindings } = await import("../../snapshot/transfer/export.ts");
    const result = await exportSnapshot(services(ctx), {
      name: args[0]!,
      project,
      output,
      s3: {
        endpoint: typeof options.endpoint === "string" ? options.endpoint : undefined,
        pathStyle: options.pathStyle === true,
      },
      stdout: ctx.io.stdout,
      cwd: ctx.cwd,
      compression,
      ...(level !== undefined ? { level } : {}),
      failOnSecrets: options.failOnSecrets === true,
      allow: (options.allow as string[] | undefined) ?? [],
      includeVolumes: options.includeVolumes === true,
      ...(typeof options.sign === "string" ? { sign: options.sign } : {}),
      spoolDir: join(ctx.env.XDG_CACHE_HOME || join(ctx.env.HOME || homedir(), ".cache"), "vm"),
      onStart: ({ total }) => progress.setTotal(total),
      onBytes: (n) => progress.tick(n),
    });
    progress.finish();
    if (result.secrets.length > 0) {
      ctx.io.stderr.write(
        `Warning: the image holds likely secrets; whoever gets the file can read them:\n${formatFindings(result.secrets)}\n` +
          "  known to be fine? allow them with --allow PATTERN or in secrets.ignore (docs/security.md)\n",
      );
    }
    if (result.allowedSecrets > 0)
      ctx.io.stderr.write(`  ${result.allowedSecrets} finding(s) allowed by secrets.ignore or --allow\n`);
    const summary =
      `Exported ${result.name} to ${result.target === "-" ? "standard output" : result.target}: ` +
      `${formatBytes(result.bytesWritten)} (image ${formatBytes(result.imageBytes)}, ${compression}) in ${formatDuration(Date.now() - started)}\n` +
      `  import it on another machine: vm snapshot import ${result.target === "-" ? "-" : /^s3:\/\//i.test(result.target) ? result.target : result.target.split("/").pop()}\n` +
      `  then use it in vm.yaml:       vm.box: "@${result.name}"\n`;
    if (result.target === "-") {
      ctx.io.stderr.write(summary);
      return {};
    }
    return { text: summary };
  },
};

/**
 * A target that looks like a URL (https://..., gs://...) is not a path: written as one, it would become a
 * folder named "https:" in the current directory. s3:// is written to; any other scheme is refused.
 */
export function refuseUrl(target: string, flag: string): void {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(target)?.[1];
  if (!scheme || /^s3$/i.test(scheme)) return;
  throw new VmError("URL_NOT_SUPPORTED", `${flag} ${target}: vm cannot write to ${scheme}:// locations yet`, {
    hint: `Export to a local file and copy it with the tool for that storage, or write it to S3 (--output s3://bucket/key)`,
  });
}

function chooseCompression(option: string | undefined, output: string | undefined): Compression {
  if (option !== undefined) {
    if (option !== "gzip" && option !== "zstd" && option !== "none") {
      throw new VmError("USAGE", `--compression must be gzip, zstd or none, not '${option}'`);
    }
    return option;
  }
  return (output && output !== "-" ? compressionForPath(output) : undefined) ?? "gzip";
}

function parseLevel(value: string | undefined, compression: Compression): number | undefined {
  if (value === undefined) return undefined;
  const level = Number(value);
  const max = compression === "zstd" ? 19 : 9;
  if (!Number.isInteger(level) || level < 1 || level > max) {
    throw new VmError(
      "USAGE",
      `--compress must be a whole number from 1 to ${max} for ${compression}, not '${value}'`,
    );
  }
  return level;
}
