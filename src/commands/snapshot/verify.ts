import type { CommandDef } from "../../cli/command.ts";
import { Progress } from "../../cli/progress.ts";
import { formatBytes } from "../../lib/units.ts";
import { withRemoteOptions, remoteOptions } from "./shared.ts";

export const snapshotVerifyCommand: CommandDef = {
  path: ["snapshot", "verify"],
  summary: "Check every digest in a snapshot file, without an engine",
  json: true,
  configure: (cmd) =>
    withRemoteOptions(cmd).argument(
      "<file>",
      "the snapshot file, an https:// URL, an s3:// path, or - to read standard input",
    ),
  run: async (ctx, args, options) => {
    const progress = new Progress(ctx.io.stderr, `Verifying ${args[0]!}`);
    const { verifyArchiveFile } = await import("../../snapshot-file/verify-file.ts");
    const contents = await verifyArchiveFile(
      args[0]!,
      ctx.cwd,
      (n) => progress.tick(n),
      ctx.io.stdin,
      undefined,
      remoteOptions(ctx, options),
    );
    progress.finish();
    const shown = args[0] === "-" ? "standard input" : args[0]!;
    if (contents.kind === "vm3") {
      const { checked, identity } = contents;
      const recorded = checked.service.image_digest;
      return {
        json: {
          ok: true,
          format: "vm 3.x",
          snapshot: checked.manifest.snapshot_name,
          image_digest: identity.configDigest,
          recorded_image_id: recorded,
          compression: contents.compression,
          signer: null,
          volumes: contents.read.volumes.map((v) => v.name),
        },
        text:
          `OK: ${shown} is a vm 3.x snapshot file, intact as far as such a file can tell (${contents.compression})\n` +
          `  snapshot ${checked.manifest.snapshot_name}, image ${identity.configDigest}${contents.read.volumes.length ? `, volumes ${contents.read.volumes.map((v) => v.name).join(", ")}` : ""}\n` +
          (recorded
            ? `  checked: the image's own content addresses, and that it is the image ${recorded} its metadata records\n`
            : "  checked: the image's own content addresses (its metadata records no image ID)\n") +
          "  not checked: its documents and volumes (vm 3.x wrote no checksums for them); not signed\n",
      };
    }
    const { manifest } = contents;
    const image = contents.read.find((e) => e.path === "images/base.tar");
    const { checkSignature, enforceSignature } = await import("../../snapshot-file/signing.ts");
    // A manifest that announces a signature must have it: verify refuses a stripped one too.
    enforceSignature(
      { require: false, trusted: new Map(), sources: [] },
      contents.signatureRaw,
      contents.checksumsRaw,
      manifest.signed_by,
    );
    const signer =
      contents.signatureRaw && contents.checksumsRaw
        ? checkSignature(contents.signatureRaw, contents.checksumsRaw)
        : undefined;
    const signedBy = signer
      ? `signed by ${signer.fingerprint}${signer.comment ? ` (${signer.comment})` : ""}`
      : "not signed";
    return {
      json: {
        ok: true,
        snapshot: manifest.snapshot_name,
        image_digest: manifest.image_digest,
        compression: contents.compression,
        signer: signer ? { fingerprint: signer.fingerprint, comment: signer.comment } : null,
        entries: contents.read,
      },
      text:
        `OK: ${shown} is intact (${contents.read.length} entries, every sha256 matched; ${contents.compression})\n` +
        `  snapshot ${manifest.snapshot_name}, image ${manifest.image_digest}, ${manifest.platform}, image tar ${formatBytes(image?.size ?? 0)}\n` +
        `  ${signedBy}\n`,
    };
  },
};
