import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { alive } from "./pid.ts";

/**
 * Who made a temporary thing (a staging folder or tag, a temp file, a lock, a pause marker, a probe
 * container), so that a later vm can reclaim what a killed one left and nothing else. The owner is a host,
 * a pid and the process's start time: the host, because a config home on a shared (NFS) drive is seen by
 * other machines, whose live processes this one cannot see; the start time, because a pid is reused.
 *
 * Written as a tag that fits in image tags and file names: `<pid>-<host>-s<start>`, the host an 8-digit
 * hash of the hostname, the start the boot and start time of the process (Linux's /proc; empty elsewhere,
 * where only the pid is checked). What older vm wrote (the pid alone, `pid-hex`, `host/pid`) still
 * parses: `host/pid` by its host, the others as this host's.
 */
export interface Owner {
  pid: number;
  hostId: string;
  /** Boot and start time of the process, or "" when unknown. */
  started: string;
}

const hostIdOf = (host: string) => createHash("sha256").update(host).digest("hex").slice(0, 8);

let me: Owner | undefined;

/** This process as an owner. */
export function self(): Owner {
  me ??= { pid: process.pid, hostId: hostIdOf(hostname()), started: processStart(process.pid) };
  return me;
}

/** The tag naming `owner` (this process by default): `[0-9a-z-]` only. */
export function ownerTag(owner: Owner = self()): string {
  return `${owner.pid}-${owner.hostId}-s${owner.started}`;
}

/**
 * The owner a tag (or the start of a name that begins with one, or an older vm's `pid` / `host/pid`)
 * names; undefined when it names none.
 */
export function parseOwner(text: string): Owner | undefined {
  const trimmed = text.trim();
  const slash = trimmed.lastIndexOf("/");
  if (slash > 0) {
    const pid = Number(trimmed.slice(slash + 1));
    return validPid(pid) ? { pid, hostId: hostIdOf(trimmed.slice(0, slash)), started: "" } : undefined;
  }
  const [pidText, host, start] = trimmed.split(/[-\s]/);
  const pid = Number(pidText);
  if (!validPid(pid)) return undefined;
  // Only this form has the "s" part. Older names put random hex (temp files) or a host hash (staging
  // tags) second, which cannot be told apart: those are taken as this host's, as older vm took them.
  if (host && /^[0-9a-f]{8}$/.test(host) && start?.startsWith("s"))
    return { pid, hostId: host, started: start.slice(1) };
  return { pid, hostId: self().hostId, started: "" };
}

/** Whether this host runs a different process than `owner` now; unsure (another host) is false. */
export function ownerGone(owner: Owner): boolean {
  const me = self();
  if (owner.hostId !== me.hostId) return false;
  if (owner.pid === me.pid) return owner.started !== "" && owner.started !== me.started;
  if (!alive(owner.pid)) return true;
  if (owner.started === "") return false;
  const now = processStart(owner.pid);
  return now !== "" && now !== owner.started;
}

/** Whether `owner` is a process on another machine (so this one cannot tell whether it still runs). */
export function elsewhere(owner: Owner): boolean {
  return owner.hostId !== self().hostId;
}

function validPid(pid: number): boolean {
  return Number.isInteger(pid) && pid > 0;
}

/** The boot and start time of a process on Linux ("" elsewhere, or when it does not run). */
function processStart(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22, counted after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    if (!Number.isInteger(ticks)) return "";
    return `${bootId()}${ticks.toString(36)}`;
  } catch {
    return "";
  }
}

let boot: string | undefined;

function bootId(): string {
  if (boot === undefined) {
    try {
      boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8")
        .replace(/[^0-9a-f]/g, "")
        .slice(0, 8);
    } catch {
      boot = "";
    }
  }
  return boot;
}
