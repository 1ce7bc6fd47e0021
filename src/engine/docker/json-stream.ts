import type { Readable } from "node:stream";

/** One message of the engine's JSON progress stream (build, load, pull, push). */
export interface StreamMessage {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string; code?: number };
  aux?: { ID?: string; [key: string]: unknown };
}

/** The engine reported a failure inside a 200 response. */
export class StreamFailure extends Error {
  readonly engineMessage: string;
  readonly seen: StreamMessage[];
  constructor(engineMessage: string, seen: StreamMessage[]) {
    super(engineMessage);
    this.engineMessage = engineMessage;
    this.seen = seen;
  }
}

/**
 * Reads the engine's newline-delimited JSON progress stream, calling `onMessage` for each message as it
 * arrives. An `{"error": ...}` message rejects with StreamFailure carrying the engine's own words: the
 * HTTP status of such responses is 200, so the status alone says nothing about success.
 * `keep` bounds how many recent messages are kept for error context.
 */
export async function consumeJsonStream(
  source: Readable,
  onMessage: (message: StreamMessage) => void = () => {},
  keep = 50,
): Promise<StreamMessage[]> {
  const recent: StreamMessage[] = [];
  let pending = "";
  const handle = (line: string) => {
    const trimmed = line.trim();
    if (!trimmed) return;
    let message: StreamMessage;
    try {
      const parsed: unknown = JSON.parse(trimmed);
      message = typeof parsed === "object" && parsed !== null ? parsed : { stream: trimmed + "\n" };
    } catch {
      message = { stream: trimmed + "\n" };
    }
    if (message.error !== undefined || message.errorDetail !== undefined) {
      throw new StreamFailure(
        message.errorDetail?.message ?? message.error ?? "unknown engine error",
        recent,
      );
    }
    recent.push(message);
    if (recent.length > keep) recent.shift();
    onMessage(message);
  };
  source.setEncoding("utf8");
  for await (const chunk of source) {
    pending += chunk as string;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      handle(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
  }
  handle(pending);
  return recent;
}
