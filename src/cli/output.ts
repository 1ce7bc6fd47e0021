import { VmError } from "../errors.ts";

/** Renders rows as aligned columns under a header, as `docker ps` does. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("   ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** How an error reads on stderr: what happened, then what to run next. */
export function formatError(error: unknown, debug: boolean): string {
  if (error instanceof VmError) {
    let out = `Error: ${error.message}\n`;
    if (error.hint) out += `Hint: ${error.hint}\n`;
    if (debug) out += `(code ${error.code})\n${error.stack ?? ""}\n`;
    return out;
  }
  const message = error instanceof Error ? error.message : String(error);
  let out = `Error: internal error: ${message}\n`;
  out +=
    debug && error instanceof Error
      ? `${error.stack ?? ""}\n`
      : "Hint: Run again with VM_DEBUG=1 for details, and report it\n";
  return out;
}

export function ago(date: Date, now = new Date()): string {
  const seconds = Math.max(0, Math.round((now.getTime() - date.getTime()) / 1000));
  if (seconds < 60) return `${seconds} second${seconds === 1 ? "" : "s"} ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? "" : "s"} ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} hour${hours === 1 ? "" : "s"} ago`;
  return `${Math.round(hours / 24)} days ago`;
}
