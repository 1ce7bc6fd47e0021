import { createCommand } from "../commands/create.ts";
import { doctorCommand } from "../commands/doctor.ts";
import { execCommand } from "../commands/exec.ts";
import { destroyCommand, restartCommand, startCommand, stopCommand } from "../commands/lifecycle.ts";
import { listCommand } from "../commands/list.ts";
import { logsCommand } from "../commands/logs.ts";
import { sshCommand } from "../commands/ssh.ts";
import { snapshotCreateCommand } from "../commands/snapshot-create.ts";
import { snapshotDeleteCommand } from "../commands/snapshot-delete.ts";
import { snapshotExportCommand } from "../commands/snapshot-export.ts";
import { snapshotImportCommand } from "../commands/snapshot-import.ts";
import { snapshotVerifyCommand } from "../commands/snapshot-verify.ts";
import { snapshotScanCommand } from "../commands/snapshot-scan.ts";
import { snapshotInspectCommand } from "../commands/snapshot-inspect.ts";
import { snapshotListCommand } from "../commands/snapshot-list.ts";
import { snapshotRestoreCommand } from "../commands/snapshot-restore.ts";
import { statusCommand } from "../commands/status.ts";
import type { CommandDef } from "./command.ts";

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
  snapshotVerifyCommand,
  snapshotScanCommand,
];
