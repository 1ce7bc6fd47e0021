import { formatBytes } from "../lib/units.ts";

interface Terminal {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

/**
 * A progress bar on a terminal (bytes, rate, ETA), redrawn at most ten times a second; silent otherwise,
 * where the command prints one summary line at the end instead.
 */
export class Progress {
  private readonly out: Terminal;
  private readonly label: string;
  private total: number | undefined;
  private done = 0;
  private readonly started = Date.now();
  private lastDraw = 0;
  private detail = "";

  constructor(out: Terminal, label: string, total?: number) {
    this.out = out;
    this.label = label;
    this.total = total;
  }

  get enabled(): boolean {
    return this.out.isTTY === true;
  }

  setTotal(total: number): void {
    this.total = total;
  }

  /** A short note shown after the figures ("3 layers pushed, 5 already there"). */
  setDetail(detail: string): void {
    this.detail = detail;
  }

  tick(bytes: number): void {
    this.done += bytes;
    const now = Date.now();
    if (!this.enabled || now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.draw(now);
  }

  /** Clears the bar so the next line starts clean. */
  finish(): void {
    if (this.enabled && this.lastDraw > 0) this.out.write("\r\u001b[2K");
  }

  private draw(now: number): void {
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = this.done / seconds;
    const parts = [this.label];
    if (this.total && this.total > 0) {
      const fraction = Math.min(this.done / this.total, 1);
      const width = 24;
      const filled = Math.round(fraction * width);
      parts.push(`[${"#".repeat(filled)}${".".repeat(width - filled)}] ${Math.floor(fraction * 100)}%`);
      parts.push(`${formatBytes(this.done)} / ${formatBytes(this.total)}`);
      const eta = rate > 0 ? Math.max(0, (this.total - this.done) / rate) : 0;
      parts.push(`${formatBytes(rate)}/s`, `ETA ${Math.ceil(eta)}s`);
    } else {
      parts.push(formatBytes(this.done), `${formatBytes(rate)}/s`);
    }
    if (this.detail) parts.push(this.detail);
    const line = parts.join("  ");
    const columns = this.out.columns ?? 100;
    this.out.write(`\r\u001b[2K${line.slice(0, columns - 1)}`);
  }
}

export function formatDuration(ms: number): string {
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}
