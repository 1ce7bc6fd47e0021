/**
 * The one error type users see. Every failure a user can cause or fix is a VmError with a stable code,
 * a message that names the thing, a hint with the next command to run, and the exit code its code has in
 * `errorCodes`.
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
  /** Standard output was closed by its reader: what `yes | head` leaves (128 + SIGPIPE), what scripts expect. */
  closedPipe: 141,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * Every error code and the exit code it leaves with, grouped by exit code. A code means one thing, so it
 * has one exit code: VmError takes it from here, and docs/user-guide.md lists these exit codes.
 */
export const errorCodes = {
  // 1: the operation failed
  BUILD_FAILED: ExitCode.failure,
  COMPRESSION_FAILED: ExitCode.failure,
  /** The engine refused a request (EngineError; its NotFound and Conflict are usually caught). */
  ENGINE_REQUEST_FAILED: ExitCode.failure,
  ENV_NOT_RUNNING: ExitCode.failure,
  ENV_START_FAILED: ExitCode.failure,
  /** VM_TEST_FAULTS asked for a failure at this point (tests only). */
  FAULT_INJECTED: ExitCode.failure,
  /** The engine's `docker save` of an image has no readable manifest.json and config. */
  IMAGE_SAVE_UNREADABLE: ExitCode.failure,
  IMPORT_CANCELLED: ExitCode.failure,
  /** The engine loaded a file that passed every check but reports no image with the file's layers. */
  LOADED_IMAGE_MISSING: ExitCode.failure,
  /** A vm 3.x snapshot file holding more (or fewer) than one service's image. */
  LEGACY_SERVICES: ExitCode.failure,
  NO_SPACE: ExitCode.failure,
  OUTPUT_UNWRITABLE: ExitCode.failure,
  /** A snapshot file built for another platform, and no terminal to ask whether to import it anyway. */
  PLATFORM_MISMATCH: ExitCode.failure,
  PULL_FAILED: ExitCode.failure,
  /** The engine refused or failed a push to a registry. */
  PUSH_FAILED: ExitCode.failure,
  /** A registry refused the credentials (or their absence) for what was asked. */
  REGISTRY_AUTH_FAILED: ExitCode.failure,
  /** Registry credentials could not be read: a credential helper failed, or docker's config.json is broken. */
  REGISTRY_CREDENTIALS_FAILED: ExitCode.failure,
  /** A registry answered an error vm has no better word for. */
  REGISTRY_REQUEST_FAILED: ExitCode.failure,
  /** A registry's TLS certificate is not trusted. */
  REGISTRY_TLS_FAILED: ExitCode.failure,
  REGISTRY_UNREACHABLE: ExitCode.failure,
  /** A download from an http(s) URL broke and could not be resumed. */
  REMOTE_CONNECTION_LOST: ExitCode.failure,
  /** A web server refused the credentials (or their absence). */
  REMOTE_DENIED: ExitCode.failure,
  REMOTE_REQUEST_FAILED: ExitCode.failure,
  REMOTE_TLS_FAILED: ExitCode.failure,
  REMOTE_UNREACHABLE: ExitCode.failure,
  /** `vm snapshot export --fail-on-secrets` refused (`vm snapshot scan`'s findings exit 8 without an error). */
  SECRETS_FOUND: ExitCode.failure,
  SECRET_SCAN_FAILED: ExitCode.failure,
  /** The image `vm snapshot create` just built or committed vanished before it was registered. */
  STAGED_IMAGE_MISSING: ExitCode.failure,

  // 2: usage
  COMPRESSION_LEVEL_INVALID: ExitCode.usage,
  INPUT_NOT_A_FILE: ExitCode.usage,
  /** An interactive shell asked for without a terminal on stdin and stdout. */
  NOT_A_TERMINAL: ExitCode.usage,
  /** Several projects could be meant: --project or --config picks one. */
  PROJECT_AMBIGUOUS: ExitCode.usage,
  /** The command needs a project and none was given or found. */
  PROJECT_UNKNOWN: ExitCode.usage,
  /** --project names no project a vm.yaml could have (and never a path). */
  PROJECT_NAME_INVALID: ExitCode.usage,
  /** An image reference that is not registry/repository[:tag][@digest] the way docker reads one. */
  REGISTRY_REF_INVALID: ExitCode.usage,
  SIGNING_KEY_INVALID: ExitCode.usage,
  /** Several projects have a snapshot of that name: --project picks one. */
  SNAPSHOT_AMBIGUOUS: ExitCode.usage,
  SNAPSHOT_NAME_INVALID: ExitCode.usage,
  URL_NOT_SUPPORTED: ExitCode.usage,
  /** A flag's value or a combination of flags is not one the command takes. */
  USAGE: ExitCode.usage,
  /** `vm snapshot import --verify` from standard input, which cannot be read twice. */
  VERIFY_NEEDS_FILE: ExitCode.usage,
  VM_LABELS_INVALID: ExitCode.usage,

  // 3: vm.yaml or settings.yaml missing or invalid
  /** vm.yaml does not say which box to use (vm.box). */
  BOX_MISSING: ExitCode.config,
  CONFIG_INVALID: ExitCode.config,
  CONFIG_NOT_FOUND: ExitCode.config,
  /** vm.yaml is not YAML. */
  CONFIG_SYNTAX: ExitCode.config,
  SETTINGS_INVALID: ExitCode.config,
  /** settings.yaml is not YAML. */
  SETTINGS_SYNTAX: ExitCode.config,
  SETTINGS_UNREADABLE: ExitCode.config,

  // 4: not found
  /** The build context folder named by vm.box (box.context) is not there. */
  BUILD_CONTEXT_NOT_FOUND: ExitCode.notFound,
  /** The Dockerfile named by vm.box or by --from-dockerfile is not there. */
  DOCKERFILE_NOT_FOUND: ExitCode.notFound,
  ENV_NOT_FOUND: ExitCode.notFound,
  IMAGE_NOT_FOUND: ExitCode.notFound,
  INPUT_NOT_FOUND: ExitCode.notFound,
  /** A registered snapshot whose image the engine no longer has. */
  SNAPSHOT_IMAGE_MISSING: ExitCode.notFound,
  SNAPSHOT_NOT_FOUND: ExitCode.notFound,
  /** No file at that URL. */
  REMOTE_NOT_FOUND: ExitCode.notFound,
  /** The registry has no such repository, tag or manifest. */
  REGISTRY_NOT_FOUND: ExitCode.notFound,

  // 5: already exists, or in use
  CONTAINER_NAME_TAKEN: ExitCode.conflict,
  ENV_EXISTS: ExitCode.conflict,
  FILE_EXISTS: ExitCode.conflict,
  /** Another vm holds the snapshot's lock. */
  SNAPSHOT_BUSY: ExitCode.conflict,
  SNAPSHOT_EXISTS: ExitCode.conflict,
  /** An environment still uses the snapshot that is to be deleted. */
  SNAPSHOT_IN_USE: ExitCode.conflict,

  // 6: the engine cannot be reached
  ENGINE_CONNECTION_LOST: ExitCode.engine,
  /** The active docker context cannot be read or names no docker endpoint. */
  ENGINE_CONTEXT_MISSING: ExitCode.engine,
  /** DOCKER_HOST or the context's endpoint is not a URL vm can use. */
  ENGINE_HOST_INVALID: ExitCode.engine,
  ENGINE_UNAVAILABLE: ExitCode.engine,
  /** The output stream of a command run in the environment broke. */
  EXEC_STREAM_FAILED: ExitCode.engine,

  // 7: a snapshot file or snapshot failed an integrity check
  ARCHIVE_DIGEST_MISMATCH: ExitCode.integrity,
  ARCHIVE_FORMAT_NEWER: ExitCode.integrity,
  ARCHIVE_INCOMPLETE: ExitCode.integrity,
  ARCHIVE_INVALID: ExitCode.integrity,
  ARCHIVE_TRUNCATED: ExitCode.integrity,
  IMAGE_INVALID: ExitCode.integrity,
  /** images/base.tar would point image names of the engine elsewhere. */
  IMAGE_NAMES_REFUSED: ExitCode.integrity,
  /** The engine refused the image in a snapshot file. */
  LOAD_FAILED: ExitCode.integrity,
  /** `vm snapshot scan` of a file holding no image. */
  SCAN_NO_IMAGE: ExitCode.integrity,
  SCAN_UNREADABLE: ExitCode.integrity,
  SIGNATURE_INVALID: ExitCode.integrity,
  SIGNATURE_MISSING: ExitCode.integrity,
  /** A signature is required, and the file is a vm 3.x one, which carries none. */
  SIGNATURE_REQUIRED: ExitCode.integrity,
  /** Signed, but by a key not among the trusted ones. */
  SIGNATURE_UNTRUSTED: ExitCode.integrity,
  SNAPSHOT_METADATA_INVALID: ExitCode.integrity,
  /** The file at a URL was replaced while it was downloaded (another ETag). */
  REMOTE_CHANGED: ExitCode.integrity,
  /** Bytes from a registry that do not match their digest. */
  REGISTRY_DIGEST_MISMATCH: ExitCode.integrity,
  /** A registry's manifest or vm's metadata in it is not one vm can read. */
  REGISTRY_MANIFEST_INVALID: ExitCode.integrity,

  // 141: the reader closed standard output
  OUTPUT_CLOSED: ExitCode.closedPipe,
} as const satisfies Record<string, ExitCodeValue>;

export type ErrorCode = keyof typeof errorCodes;

export interface VmErrorOptions {
  hint?: string | undefined;
  cause?: unknown;
}

export class VmError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly exitCode: ExitCodeValue;

  constructor(code: ErrorCode, message: string, options: VmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VmError";
    this.code = code;
    this.hint = options.hint;
    this.exitCode = errorCodes[code];
  }
}

export function isVmError(error: unknown, code?: ErrorCode): error is VmError {
  return error instanceof VmError && (code === undefined || error.code === code);
}

/** The `code` of a Node system error (ENOENT, EACCES, ...), or undefined. */
export function systemErrorCode(error: unknown): string | undefined {
  if (error instanceof Error && "code" in error && typeof error.code === "string") return error.code;
  return undefined;
}
