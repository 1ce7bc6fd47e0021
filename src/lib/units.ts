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

/** A memory size as vm.yaml takes it: "unlimited", or a number with an optional binary unit ("8g", "512 MiB"). */
export const MEMORY_SIZE = new RegExp(
  `^\\s*(unlimited|\\d+(\\.\\d+)?\\s*(${Object.keys(UNIT_BYTES).join("|")})?)\\s*$`,
  "i",
);

/**
 * vm.memory in bytes, or undefined for no limit. A bare number means MB (as the earlier tool read it);
 * sizes use binary units, as Docker's own `--memory 8g` does.
 */
export function memoryBytes(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") return Math.round(value * UNIT_BYTES.mb!);
  const match = MEMORY_SIZE.exec(value);
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

export interface Limits {
  memoryBytes?: number;
  nanoCpus?: number;
}

/**
 * The limits to give the engine. vm.memory and vm.cpus as percentages (vm 3.x's "50%") are shares of the
 * engine's memory and CPUs (`engine`, its /info; needed only then): memory in whole MB, at least the
 * engine's 6 MB minimum; CPUs to two decimals, at least 1 and at most all of them.
 */
export function resolveLimits(
  config: { memoryBytes?: number; memoryPercent?: number; nanoCpus?: number; cpusPercent?: number },
  engine: { memoryBytes: number; cpus: number } | undefined,
): Limits {
  const limits: Limits = {};
  if (config.memoryBytes !== undefined) limits.memoryBytes = config.memoryBytes;
  if (config.nanoCpus !== undefined) limits.nanoCpus = config.nanoCpus;
  const mb = UNIT_BYTES.mb!;
  if (config.memoryPercent !== undefined && engine && engine.memoryBytes > 0) {
    const share = Math.floor((engine.memoryBytes * config.memoryPercent) / 100 / mb) * mb;
    limits.memoryBytes = Math.max(6 * mb, share);
  }
  if (config.cpusPercent !== undefined && engine && engine.cpus > 0) {
    const share = Math.round(engine.cpus * config.cpusPercent) / 100;
    limits.nanoCpus = Math.round(Math.min(Math.max(1, share), engine.cpus) * 1e9);
  }
  return limits;
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
