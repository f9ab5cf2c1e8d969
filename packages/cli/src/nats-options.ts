import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { credentialsInUrl, type NatsTransportOptions, withoutUserinfo } from '@synod/transport';
import { type ConfigFile, fileProblem } from './config-file.js';
import { OptionError } from './usage.js';

export const DEFAULT_NATS = 'nats://127.0.0.1:4222';

/** The flags every connecting command takes for NATS (parseArgs options). */
export const NATS_FLAGS = {
  nats: { type: 'string' },
  'nats-creds': { type: 'string' },
  'nats-user': { type: 'string' },
  'nats-password': { type: 'string' },
  'nats-token': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

type NatsFlagValues = { readonly [K in keyof typeof NATS_FLAGS]?: string | undefined };

/** One setting, each with its flag, --config key and environment variable. */
const SETTINGS = {
  url: { flag: 'nats', key: 'nats', env: 'SYNOD_NATS_URL' },
  creds: { flag: 'nats-creds', key: 'natsCreds', env: 'SYNOD_NATS_CREDS' },
  user: { flag: 'nats-user', key: 'natsUser', env: 'SYNOD_NATS_USER' },
  password: { flag: 'nats-password', key: 'natsPassword', env: 'SYNOD_NATS_PASSWORD' },
  token: { flag: 'nats-token', key: 'natsToken', env: 'SYNOD_NATS_TOKEN' },
  tlsCa: { flag: 'tls-ca', key: 'tlsCa', env: 'SYNOD_NATS_TLS_CA' },
  tlsCert: { flag: 'tls-cert', key: 'tlsCert', env: 'SYNOD_NATS_TLS_CERT' },
  tlsKey: { flag: 'tls-key', key: 'tlsKey', env: 'SYNOD_NATS_TLS_KEY' },
} as const;

type Setting = keyof typeof SETTINGS;

/** A value and where it came from, so that a message can point at it without quoting it. */
interface Found {
  readonly value: string;
  readonly origin: string;
}

/** What connectNats needs besides a name and a logger. */
export type NatsConnection = Omit<NatsTransportOptions, 'name' | 'logger' | 'connection'> & {
  readonly servers: readonly string[];
};

/**
 * The NATS connection a command asks for. Each setting comes from its flag, else --config,
 * else the environment, else the default. Credentials in a URL (nats://user:pass@host,
 * nats://token@host) count as given where the URL was given, after that place's explicit
 * settings; the URLs handed on carry none. Files are checked here, so a missing one is
 * reported before anything starts.
 */
export async function natsConnection(
  flags: NatsFlagValues,
  config: ConfigFile,
  env: NodeJS.ProcessEnv = process.env,
): Promise<NatsConnection> {
  const places = [
    place(
      (s) => flags[SETTINGS[s].flag],
      (s) => `--${SETTINGS[s].flag}`,
    ),
    place(
      (s) => (s === 'url' ? config.strings('nats')?.join(',') : config.string(SETTINGS[s].key)),
      (s) => config.describe(SETTINGS[s].key),
    ),
    place(
      (s) => env[SETTINGS[s].env],
      (s) => SETTINGS[s].env,
    ),
  ];
  const pick = (setting: Setting): Found | undefined =>
    places.find((p) => p[setting] !== undefined)?.[setting];
  const url = pick('url');
  const servers = (url?.value ?? DEFAULT_NATS).split(',').map((s) => s.trim());
  for (const server of servers) checkServer(server, url?.origin ?? 'the default');
  const [creds, user, password, token, tlsCa, tlsCert, tlsKey] = (
    ['creds', 'user', 'password', 'token', 'tlsCa', 'tlsCert', 'tlsKey'] as const
  ).map(pick);
  const logins = [creds, user ?? password, token].filter((f) => f !== undefined);
  if (logins.length > 1)
    throw new OptionError(
      `${logins.map((f) => f.origin).join(' and ')} are different ways to log in to NATS; give one`,
    );
  if (user !== undefined && password === undefined)
    throw new OptionError(`${user.origin} needs a password (--nats-password)`);
  if (password !== undefined && user === undefined)
    throw new OptionError(`${password.origin} needs a user (--nats-user)`);
  if ((tlsCert === undefined) !== (tlsKey === undefined))
    throw new OptionError(`${(tlsCert ?? tlsKey)!.origin} needs both --tls-cert and --tls-key`);
  for (const file of [creds, tlsCa, tlsCert, tlsKey]) if (file !== undefined) await readable(file);
  const tls =
    tlsCa !== undefined || tlsCert !== undefined || servers.some((s) => /^tls:\/\//i.test(s));
  return {
    servers: servers.map(withoutUserinfo),
    ...(creds === undefined ? {} : { credentialsFile: creds.value }),
    ...(user === undefined || password === undefined
      ? {}
      : { user: user.value, pass: password.value }),
    ...(token === undefined ? {} : { token: token.value }),
    ...(tls
      ? {
          tls: {
            ...(tlsCa === undefined ? {} : { caFile: tlsCa.value }),
            ...(tlsCert === undefined || tlsKey === undefined
              ? {}
              : { certFile: tlsCert.value, keyFile: tlsKey.value }),
          },
        }
      : {}),
  };
}

/**
 * One place's settings. An empty value (SYNOD_NATS_TOKEN= in a shell) is no value; the user
 * and password or token in the place's URLs fill in what it does not give explicitly.
 */
function place(
  value: (setting: Setting) => string | undefined,
  origin: (setting: Setting) => string,
): Partial<Record<Setting, Found | undefined>> {
  const settings: Partial<Record<Setting, Found | undefined>> = {};
  for (const setting of Object.keys(SETTINGS) as Setting[]) {
    const text = value(setting);
    if (text !== undefined && text !== '')
      settings[setting] = { value: text, origin: origin(setting) };
  }
  if (settings.url !== undefined) {
    const login = loginInUrls(settings.url);
    settings.user ??= login.user;
    settings.password ??= login.password;
    settings.token ??= login.token;
  }
  return settings;
}

/** nats://user:pass@host gives a user and password, nats://token@host a token. */
function loginInUrls(urls: Found): { user?: Found; password?: Found; token?: Found } {
  const logins = urls.value
    .split(',')
    .map((url) => credentialsInUrl(url.trim()))
    .filter((login) => login !== undefined);
  if (logins.length === 0) return {};
  const first = logins[0]!;
  if (logins.some((l) => l.user !== first.user || l.pass !== first.pass || l.token !== first.token))
    throw new OptionError(`the URLs of ${urls.origin} carry different credentials`);
  const found = (value: string | undefined): Found | undefined =>
    value === undefined ? undefined : { value, origin: `the URL of ${urls.origin}` };
  const user = found(first.user);
  const password = found(first.pass);
  const token = found(first.token);
  return {
    ...(user === undefined ? {} : { user }),
    ...(password === undefined ? {} : { password }),
    ...(token === undefined ? {} : { token }),
  };
}

function split(url: string): { scheme: string; authority: string; rest: string } {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  const afterScheme = url.slice(scheme.length);
  const end = afterScheme.search(/[/?#]/);
  return {
    scheme,
    authority: end === -1 ? afterScheme : afterScheme.slice(0, end),
    rest: end === -1 ? '' : afterScheme.slice(end),
  };
}

/** nats://, tls:// or a bare HOST:PORT; the message shows the URL without its credentials. */
function checkServer(server: string, origin: string): void {
  const { scheme, authority } = split(server);
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  if (
    (scheme !== '' && !/^(nats|tls):\/\/$/i.test(scheme)) ||
    host === '' ||
    !/^(\[[0-9a-f:.]+\]|[^:[\]]+)(:\d{1,5})?$/i.test(host)
  )
    throw new OptionError(
      `${origin} must be nats://HOST:PORT or tls://HOST:PORT (comma-separated for a cluster), got ${withoutUserinfo(server) || '""'}`,
    );
}

async function readable(file: Found): Promise<void> {
  try {
    await access(file.value, constants.R_OK);
  } catch (error) {
    throw new OptionError(`${file.origin} ${file.value}: ${fileProblem(error)}`);
  }
}
