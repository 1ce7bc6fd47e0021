import { VmError, type VmErrorOptions } from "../errors.ts";

/**
 * The engine's failures in the engine's own terms, so domain code branches on what happened (the object
 * is gone, it is in use) and never on the transport's status codes.
 */

/** The engine refused a request. `status` is the engine's own answer (HTTP status for Docker), kept for messages. */
export class EngineError extends VmError {
  readonly status: number;
  constructor(status: number, message: string, what: string) {
    super("ENGINE_REQUEST_FAILED", `${what}: ${message}`);
    this.status = status;
  }
}

/** The image, container or volume asked for does not exist. */
export class NotFound extends EngineError {}

/** The request conflicts with the object's state: it is in use, or the name is taken. */
export class Conflict extends EngineError {}

/** The engine cannot be reached, or the connection to it was lost mid-request. */
export class Unreachable extends VmError {
  constructor(
    code: "ENGINE_UNAVAILABLE" | "ENGINE_CONNECTION_LOST",
    message: string,
    options: VmErrorOptions = {},
  ) {
    super(code, message, options);
  }
}

/** The error for an engine that answered `status` (>= 400) to the request described by `what`. */
export function requestFailed(status: number, message: string, what: string): EngineError {
  if (status === 404) return new NotFound(status, message, what);
  if (status === 409) return new Conflict(status, message, what);
  return new EngineError(status, message, what);
}

/** Whether `error` says the object is absent (so a removal has nothing left to do). */
export function isNotFound(error: unknown): error is NotFound {
  return error instanceof NotFound;
}

/** Whether `error` says the object is in use or its name taken. */
export function isConflict(error: unknown): error is Conflict {
  return error instanceof Conflict;
}
