import { accessSync, constants, readdirSync, realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { MissingBinaryError } from './errors.js';

export interface FindBinaryOptions {
  /** A PATH-style list to search instead of process.env.PATH (tests use it to simulate a bare machine). */
  readonly path?: string;
  /** Directories searched after PATH. */
  readonly extraDirs?: readonly string[];
}

const DEBIAN_PACKAGES: Readonly<Record<string, string>> = {
  'nats-server': 'nats-server',
  initdb: 'postgresql',
  pg_ctl: 'postgresql',
  postgres: 'postgresql',
  pg_isready: 'postgresql',
  psql: 'postgresql-client',
};

/** The Debian package that ships `binary`, used to make MissingBinaryError actionable. */
export function debianPackageFor(binary: string): string {
  return DEBIAN_PACKAGES[binary] ?? binary;
}

function isExecutableFile(candidate: string): boolean {
  try {
    accessSync(candidate, constants.X_OK);
    return statSync(candidate).isFile();
  } catch {
    return false;
  }
}

/** Absolute path of `name` from PATH (then `extraDirs`), or a MissingBinaryError naming its package. */
export function findBinary(name: string, options: FindBinaryOptions = {}): string {
  const pathDirs = (options.path ?? process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d !== '');
  for (const dir of [...pathDirs, ...(options.extraDirs ?? [])]) {
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new MissingBinaryError(name, debianPackageFor(name));
}

/**
 * Debian installs the server binaries (initdb, postgres) only under /usr/lib/postgresql/VERSION/bin,
 * not on PATH, so those directories are searched too, newest major version first.
 */
export function postgresBinDirs(root = '/usr/lib/postgresql'): string[] {
  let versions: string[];
  try {
    versions = readdirSync(root);
  } catch {
    return [];
  }
  return versions
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
    .map((v) => join(root, v, 'bin'));
}

export interface PostgresTools {
  readonly initdb: string;
  readonly postgres: string;
  readonly pgIsready: string;
}

/**
 * initdb, postgres and pg_isready of one installation. The other two are looked up next to the
 * real `postgres` first: a data directory made by one major version will not start under another,
 * and /usr/bin/pg_isready on Debian is a perl wrapper that is slower to start than the real binary.
 */
export function findPostgresTools(options: FindBinaryOptions = {}): PostgresTools {
  const extraDirs = options.extraDirs ?? postgresBinDirs();
  const postgres = findBinary('postgres', { ...options, extraDirs });
  let binDir = dirname(postgres);
  try {
    binDir = dirname(realpathSync(postgres));
  } catch {
    // A dangling symlink fails later with a clear spawn error; keep the unresolved directory.
  }
  const sibling = (name: string): string =>
    findBinary(name, {
      path: binDir,
      extraDirs: [...(options.path ?? process.env.PATH ?? '').split(delimiter), ...extraDirs],
    });
  return { postgres, initdb: sibling('initdb'), pgIsready: sibling('pg_isready') };
}
