import { createCommand } from "./create.ts";
import { doctorCommand } from "./doctor.ts";
import { execCommand } from "./exec.ts";
import { destroyCommand, restartCommand, startCommand, stopCommand } from "./lifecycle.ts";
import { listCommand } from "./list.ts";
import { logsCommand } from "./logs.ts";
import { sshCommand } from "./ssh.ts";
import { snapshotCreateCommand } from "./snapshot/create.ts";
import { snapshotDeleteCommand } from "./snapshot/delete.ts";
import { snapshotExportCommand } from "./snapshot/export.ts";
import { snapshotImportCommand } from "./snapshot/import.ts";
import { snapshotVerifyCommand } from "./snapshot/verify.ts";
import { snapshotScanCommand } from "./snapshot/scan.ts";
import { snapshotInspectCommand } from "./snapshot/inspect.ts";
import { snapshotListCommand } from "./snapshot/list.ts";
import { snapshotRestoreCommand } from "./snapshot/restore.ts";
import { snapshotPushCommand } from "./snapshot/push.ts";
import { snapshotPullCommand } from "./snapshot/pull.ts";
import { statusCommand } from "./status.ts";
import type { CommandDef } from "../cli/command.ts";

/** Every command vm has, in the order `vm --help` lists them. */
export const commands: CommandDef[] = [
  createCommand,
  startCommand,
  stopCommand,
  restartCommand,
  destroyCommand,
  statusCommand,
  listCommand,
  execCommand,
  sshCommand,
  logsCommand,
  doctorCommand,
  snapshotCreateCommand,
  snapshotListCommand,
  snapshotInspectCommand,
  snapshotDeleteCommand,
  snapshotRestoreCommand,
  snapshotExportCommand,
  snapshotImportCommand,
  snapshotPushCommand,
  snapshotPullCommand,
  snapshotVerifyCommand,
  snapshotScanCommand,
];
