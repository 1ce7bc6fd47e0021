import { fstatSync } from "node:fs";
import type { Config } from "../config/load.ts";
import type { Engine } from "../engine/engine.ts";
import { VmError } from "../errors.ts";
import type { Io } from "../lib/io.ts";
import { SnapshotStore } from "../store/store.ts";
import { ensureRunning, requireEnvironment } from "./environment.ts";
import { pauseMarkerDir, recoverPaused } from "./quiesce.ts";

/** What a session needs of the command that opens it. */
export interface SessionContext {
  engine: Engine;
  env: NodeJS.ProcessEnv;
  io: Io;
}

/** bash as a login shell where the box has it, else sh. */
export const LOGIN_SHELL = [
  "/bin/sh",
  "-c",
  "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi",
];

export interface SessionOptions {
  cmd: string[];
  /** undefined: a terminal when stdin and stdout are terminals. */
  tty: boolean | undefined;
  user: string | undefined;
  workdir: string | undefined;
  env: string[];
  /** An interactive shell needs a terminal on our side. */
  interactive: boolean;
}

/**
 * Runs a command in the project's running environment, wiring our stdin/stdout/stderr to it: a terminal
 * in raw mode when there is one, stdout and stderr kept apart when there is not. Returns its exit code.
 */
export async function runInEnvironment(
  ctx: SessionContext,
  config: Config,
  options: SessionOptions,
): Promise<number> {
  const { stdin, stdout, stderr } = ctx.io;
  const terminal = stdin.isTTY === true && stdout.isTTY === true;
  const tty = options.tty ?? terminal;
  if (options.interactive && !terminal) {
    throw new VmError(
      "NOT_A_TERMINAL",
      "An interactive shell needs a terminal, and stdin or stdout is not one",
      {
        hint: "Run a command instead: vm ssh -c 'CMD' or vm exec -- CMD",
      },
    );
  }
  const markers = pauseMarkerDir(SnapshotStore.fromEnv(ctx.env).root);
  const found = await requireEnvironment(ctx.engine, config);
  const env = ensureRunning(
    await recoverPaused(ctx.engine, markers, found, (text) => stderr.write(text)),
    config,
  );
  const extraEnv: Record<string, string> = { ...config.environment };
  for (const pair of options.env) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new VmError("USAGE", `--env expects KEY=VALUE, got '${pair}'`);
    extraEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (tty && ctx.env.TERM) extraEnv.TERM ??= ctx.env.TERM;

  // Forward stdin when it carries something: a terminal session, or data piped or redirected into vm.
  const forwardStdin = tty ? stdin.isTTY === true : hasReadableStdin();
  const raw = tty && stdin.isTTY === true && typeof stdin.setRawMode === "function";
  if (raw) stdin.setRawMode!(true);
  let onResize: (() => void) | undefined;
  try {
    return await ctx.engine.containers.exec(env.id, {
      cmd: options.cmd,
      tty,
      ...((options.user ?? config.user) ? { user: options.user ?? config.user! } : {}),
      workingDir: options.workdir ?? config.project.workspacePath,
      env: extraEnv,
      ...(forwardStdin ? { stdin } : {}),
      stdout,
      stderr,
      onStart: (control) => {
        if (!tty || !stdout.isTTY) return;
        onResize = () => void control.resize(stdout.rows ?? 24, stdout.columns ?? 80).catch(() => {});
        onResize();
        stdout.on("resize", onResize);
      },
    });
  } finally {
    if (onResize) stdout.off("resize", onResize);
    if (raw) stdin.setRawMode!(false);
  }
}

function hasReadableStdin(): boolean {
  try {
    const stat = fstatSync(0);
    return stat.isFIFO() || stat.isFile() || stat.isSocket();
  } catch {
    return false;
  }
}

export async function streamLogs(
  ctx: SessionContext,
  config: Config,
  options: { follow: boolean; tail?: number },
): Promise<void> {
  const env = await requireEnvironment(ctx.engine, config);
  await ctx.engine.containers.logs(env.id, { ...options, stdout: ctx.io.stdout, stderr: ctx.io.stderr });
}
