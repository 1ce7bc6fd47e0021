import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readFile, readdir, readlink } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import tar from "tar-stream";
import { IgnoreMatcher } from "./dockerignore.ts";

export interface BuildContext {
  stream: Readable;
  /** Where the Dockerfile sits inside the context stream. */
  dockerfile: string;
  /** Resolves when every entry has been written; rejects with the first read error. */
  done: Promise<void>;
}

/**
 * Streams a build context folder as a tar, leaving out what .dockerignore excludes. A Dockerfile outside
 * the context (or excluded by .dockerignore) is added under a private name, as the docker CLI does, so
 * `box: ../Dockerfile` with its own context works.
 */
export async function packBuildContext(
  contextDir: string,
  dockerfilePath: string,
  options: { labels?: Record<string, string> } = {},
): Promise<BuildContext> {
  let ignoreText = "";
  try {
    ignoreText = await readFile(join(contextDir, ".dockerignore"), "utf8");
  } catch {
    // no .dockerignore: everything goes
  }
  const matcher = new IgnoreMatcher(ignoreText);
  const rel = relative(contextDir, dockerfilePath).split(sep).join("/");
  const labels = Object.entries(options.labels ?? {});
  const inside =
    !rel.startsWith("../") &&
    rel !== ".." &&
    !rel.startsWith("/") &&
    !matcher.ignores(rel) &&
    labels.length === 0;
  let dockerfileBytes = inside ? undefined : await readFile(dockerfilePath);
  if (dockerfileBytes && labels.length > 0) {
    // One LABEL instruction at the end, rather than the API's `labels` parameter: that adds one step per
    // label, and the containerd image store keeps each step's image as a dangling image carrying some of
    // vm's labels, which then outlive `vm destroy`.
    const line = "LABEL " + labels.map(([k, v]) => `${quoteLabel(k)}=${quoteLabel(v)}`).join(" ");
    dockerfileBytes = Buffer.concat([dockerfileBytes, Buffer.from(`\n${line}\n`)]);
  }
  const dockerfile = inside
    ? rel
    : `.vm-dockerfile-${createHash("sha256").update(dockerfileBytes!).digest("hex").slice(0, 12)}`;

  const pack = tar.pack();
  const done = (async () => {
    try {
      await addFolder(pack, contextDir, "", matcher);
      if (dockerfileBytes) pack.entry({ name: dockerfile, mode: 0o644 }, dockerfileBytes);
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
      throw error;
    }
  })();
  // Callers observe failures through the stream; `done` is for those who want to await the walk itself.
  done.catch(() => {});
  return { stream: pack as unknown as Readable, dockerfile, done };
}

/** A Dockerfile double-quoted string: backslash, quote and `$` (variable expansion) escaped. */
function quoteLabel(value: string): string {
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`).replace(/\n/g, "\\n")}"`;
}

async function addFolder(
  pack: tar.Pack,
  root: string,
  prefix: string,
  matcher: IgnoreMatcher,
): Promise<void> {
  const entries = await readdir(join(root, prefix), { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    const full = join(root, name);
    const ignored = matcher.ignores(name);
    if (entry.isDirectory()) {
      if (ignored && matcher.canSkipFolder(name)) continue;
      const stat = await lstat(full);
      if (!ignored) pack.entry({ name, type: "directory", mode: stat.mode & 0o7777, mtime: stat.mtime });
      await addFolder(pack, root, name, matcher);
      continue;
    }
    if (ignored) continue;
    const stat = await lstat(full);
    if (entry.isSymbolicLink()) {
      pack.entry({
        name,
        type: "symlink",
        linkname: await readlink(full),
        mode: stat.mode & 0o7777,
        mtime: stat.mtime,
      });
    } else if (entry.isFile()) {
      const sink = pack.entry({ name, size: stat.size, mode: stat.mode & 0o7777, mtime: stat.mtime });
      await pipeline(createReadStream(full), sink);
    }
  }
}
