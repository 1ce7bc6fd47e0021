import type { RawContainer, RawContainerSummary } from "./types.ts";
import type { ContainerDetails, ContainerSummary } from "../engine.ts";

/** The Engine API's container JSON, as vm's engine-neutral types. */
export function toContainerDetails(raw: RawContainer): ContainerDetails {
  const ports: ContainerDetails["ports"] = [];
  for (const [container, bindings] of Object.entries(raw.NetworkSettings?.Ports ?? {})) {
    for (const b of bindings ?? []) ports.push({ container, hostIp: b.HostIp, hostPort: b.HostPort });
  }
  return {
    id: raw.Id,
    name: raw.Name.replace(/^\//, ""),
    image: raw.Config?.Image ?? "",
    imageId: raw.Image,
    labels: raw.Config?.Labels ?? {},
    state: {
      status: raw.State.Status,
      running: raw.State.Running,
      paused: raw.State.Paused,
      startedAt: raw.State.StartedAt,
      exitCode: raw.State.ExitCode,
    },
    created: raw.Created,
    memoryBytes: raw.HostConfig?.Memory ?? 0,
    nanoCpus: raw.HostConfig?.NanoCpus ?? 0,
    mounts: (raw.Mounts ?? []).map((m) => ({
      type: m.Type,
      source: m.Source,
      destination: m.Destination,
      ...(m.Name ? { name: m.Name } : {}),
    })),
    ports,
  };
}

export function toContainerSummary(c: RawContainerSummary): ContainerSummary {
  return {
    id: c.Id,
    name: (c.Names?.[0] ?? c.Id).replace(/^\//, ""),
    image: c.Image,
    imageId: c.ImageID,
    state: c.State,
    status: c.Status,
    labels: c.Labels ?? {},
    created: c.Created,
  };
}
