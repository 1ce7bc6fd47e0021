import type { CommandDef } from "../cli/command.ts";
import { Progress } from "../cli/progress.ts";
import { formatBytes } from "../config/units.ts";

export const snapshotVerifyCommand: CommandDef = {
  path: ["snapshot", "verify"],
  summary: "Check every digest in a snapshot file, without an engine",
  json: true,
  configure: (cmd) => cmd.argument("<file>", "the snapshot file, or - to read standard input"),
  run: async (ctx, args) => {
    const progress = new Progress(ctx.io.stderr, `Verifying ${args[0]!}`);
    const { verifyArchiveFile } = await import("../snapshot/verify-file.ts");
    const contents = await verifyArchiveFile(args[0]!, ctx.cwd, (n) => progress.tick(n), ctx.io.stdin);
    progress.finish();
    const { manifest } = contents;
    const image = contents.read.find((e) => e.path === "images/base.tar");
    const { checkSignature, enforceSignature } = await import("../snapshot/signing.ts");
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
        `OK: ${args[0] === "-" ? "standard input" : args[0]!} is intact (${contents.read.length} entries, every sha256 matched; ${contents.compression})\n` +
        `  snapshot ${manifest.snapshot_name}, image ${manifest.image_digest}, ${manifest.platform}, image tar ${formatBytes(image?.size ?? 0)}\n` +
        `  ${signedBy}\n`,
    };
  },
};
