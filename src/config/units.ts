const SIZE = /^\s*(unlimited|\d+(\.\d+)?\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?)\s*$/i;

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * vm.memory in bytes, or undefined for no limit. A bare number means MB (as the earlier tool read it);
 * sizes use binary units, as Docker's own `--memory 8g` does.
 */
export function memoryBytes(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") return Math.round(value * UNIT_BYTES.mb!);
  const match = SIZE.exec(value);
  if (!match) throw new Error(`not a memory size: ${value}`);
  if (match[1]!.toLowerCase() === "unlimited") return undefined;
  const amount = Number.parseFloat(match[1]!);
  const unit = (match[3] ?? "mb").toLowerCase();
  return Math.round(amount * UNIT_BYTES[unit]!);
}

/** vm.cpus in the engine's NanoCpus, or undefined for no limit. */
export function nanoCpus(value: number | "unlimited" | undefined): number | undefined {
  if (value === undefined || value === "unlimited") return undefined;
  return Math.round(value * 1e9);
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]}`;
}
