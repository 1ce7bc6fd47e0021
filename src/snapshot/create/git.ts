import { execFile } from "node:child_process";

export interface GitState {
  branch: string | null;
  commit: string;
  dirty: boolean;
}

function git(dir: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("git", ["-C", dir, ...args], { timeout: 5000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout) =>
      resolve(error ? undefined : stdout.trim()),
    );
  });
}

/** The project's git branch, commit and whether it has uncommitted changes; null outside a repository. */
export async function gitState(dir: string): Promise<GitState | null> {
  const commit = await git(dir, ["rev-parse", "HEAD"]);
  if (!commit) return null;
  const [branch, status] = await Promise.all([
    git(dir, ["symbolic-ref", "--short", "-q", "HEAD"]),
    git(dir, ["status", "--porcelain"]),
  ]);
  return { branch: branch || null, commit, dirty: (status ?? "") !== "" };
}
