import type { Engine } from "../engine/engine.ts";
import type { SnapshotStore } from "../store/store.ts";

/** What env and snapshot operations work with: the engine client, the snapshot store, the surroundings. */
export interface Services {
  engine: Engine;
  snapshots: SnapshotStore;
  env: NodeJS.ProcessEnv;
  /** Labels added to everything created (VM_LABELS). */
  extraLabels: Record<string, string>;
  /** Progress and build output for people; goes to stderr. */
  log: (text: string) => void;
  /** Snapshots from elsewhere than this machine's store (`vm.box: "@registry/repo:tag"`), wired in by main. */
  remoteBoxes?: RemoteBoxes | undefined;
}

/** Brings a snapshot named by a registry reference into the store (once), and says its name there. */
export interface RemoteBoxes {
  resolve(ref: string, services: Services): Promise<{ name: string }>;
}
