/** A required executable is not installed; the message names the Debian package that provides it. */
export class MissingBinaryError extends Error {
  override readonly name = 'MissingBinaryError';
  readonly binary: string;
  readonly debianPackage: string;

  constructor(binary: string, debianPackage: string) {
    super(
      `${binary} not found on PATH; install the Debian package "${debianPackage}" (apt-get install -y ${debianPackage})`,
    );
    this.binary = binary;
    this.debianPackage = debianPackage;
  }
}

/**
 * A server exited before it was ready, or did not become ready in time. The tail of its log is in
 * the message because that is almost always where the reason is (port in use, bad flag, ...).
 */
export class ServerStartError extends Error {
  override readonly name = 'ServerStartError';
  readonly server: string;
  readonly logTail: string;

  constructor(server: string, reason: string, logTail: string) {
    const tail = logTail.trim();
    super(
      `${server} failed to start: ${reason}` +
        (tail === '' ? ' (no log output)' : `\n--- last log lines ---\n${tail}`),
    );
    this.server = server;
    this.logTail = tail;
  }
}
