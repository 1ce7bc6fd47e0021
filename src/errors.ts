/**
 * The one error type users see. Every failure a user can cause or fix is a VmError with a stable code,
 * a message that names the thing, a hint with the next command to run, and the exit code to leave with.
 * Programmer errors stay plain `Error`s and are reported as internal errors.
 */
export const ExitCode = {
  failure: 1,
  usage: 2,
  config: 3,
  notFound: 4,
  conflict: 5,
  engine: 6,
  integrity: 7,
  /** `vm snapshot scan` found likely secrets: not a failure of vm, a finding a script can branch on. */
  secretsFound: 8,
  interrupted: 130,
} as const;

export interface VmErrorOptions {
  hint?: string | undefined;
  exitCode?: number;
  cause?: unknown;
}

export class VmError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: string, message: string, options: VmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VmError";
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.failure;
  }
}

export function isVmError(error: unknown, code?: string): error is VmError {
  return error instanceof VmError && (code === undefined || error.code === code);
}

/** The `code` of a Node system error (ENOENT, EACCES, ...), or undefined. */
export function systemErrorCode(error: unknown): string | undefined {
  if (error instanceof Error && "code" in error && typeof error.code === "string") return error.code;
  return undefined;
}
