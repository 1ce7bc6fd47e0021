/** Engine-side names for a project's things. Names are for people; vm finds things by label. */
export const containerName = (project: string) => `${project}-dev`;
export const boxImageTag = (project: string) => `vm-box/${project}:latest`;
export const volumeName = (project: string, volume: string) => `vm-${project}-${volume}`;
