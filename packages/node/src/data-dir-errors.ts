/**
 * Why a node may not start on its data directory. The message is one complete line an
 * operator can act on: the CLI prints it as `synod: <message>` and exits non-zero.
 */
export class DataDirError extends Error {
  override readonly name = 'DataDirError';
  constructor(
    readonly code:
      | 'IN_USE'
      | 'FOREIGN'
      | 'MALFORMED'
      | 'LOG_MISSING'
      | 'LOST_DISK'
      | 'NOT_A_MEMBER'
      | 'STILL_A_MEMBER'
      | 'FOUNDERS_DIFFER',
    message: string,
  ) {
    super(message);
  }
}

/** How an operator replaces a node whose acceptor state is gone. */
export function replaceHint(group: string, node: string): string {
  return `replace it: run \`synod group leave --group ${group} ${node}\`, then start ${node} again with --join (its directory may stay as it is)`;
}

export function lostDisk(
  group: string,
  node: string,
  dir: string,
  peer: string,
  known: string,
): DataDirError {
  return new DataDirError(
    'LOST_DISK',
    `node ${node} of group ${group} has no acceptor state in ${dir}, but peer ${peer} knows it as a member that already voted (incarnation ${known}): its promises and accepted values are lost, so it must not vote again; ${replaceHint(group, node)}`,
  );
}

export function stillAMember(group: string, node: string, peer: string): DataDirError {
  return new DataDirError(
    'STILL_A_MEMBER',
    `node ${node} was started with --join and an empty data directory, but it is still a member of group ${group} that already voted (peer ${peer} says so): run \`synod group leave --group ${group} ${node}\` first, then start it again with --join`,
  );
}

export function notAMember(group: string, node: string, peer: string): DataDirError {
  return new DataDirError(
    'NOT_A_MEMBER',
    `node ${node} is no longer a member of group ${group} (peer ${peer}'s log says so) and its data directory is empty: start it with --join to join the group again as a new node`,
  );
}

export function foundersDiffer(
  group: string,
  node: string,
  mine: readonly string[],
  peer: string,
  theirs: readonly string[],
): DataDirError {
  return new DataDirError(
    'FOUNDERS_DIFFER',
    `node ${node} names the founders of group ${group} as ${mine.join(',')} but peer ${peer} names ${theirs.join(',')}: every node of a group, a joining one too, must give the same --peers`,
  );
}
