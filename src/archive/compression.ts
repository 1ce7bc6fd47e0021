/** The compressions a snapshot file may use, and how file names say which. */
export type Compression = "gzip" | "zstd" | "none";

export function compressionForPath(path: string): Compression | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith(".gz") || lower.endsWith(".tgz")) return "gzip";
  if (lower.endsWith(".zst")) return "zstd";
  if (lower.endsWith(".tar")) return "none";
  return undefined;
}

export function extensionFor(compression: Compression): string {
  return compression === "gzip"
    ? ".snapshot.tar.gz"
    : compression === "zstd"
      ? ".snapshot.tar.zst"
      : ".snapshot.tar";
}
