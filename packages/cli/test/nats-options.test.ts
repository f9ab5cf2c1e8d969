// Where a command's NATS settings come from: flag, then --config, then SYNOD_NATS_*, then the
// default; credentials taken out of URLs; mistakes refused without quoting a secret.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigFile } from '../src/config-file.js';
import { natsConnection } from '../src/nats-options.js';
import { OptionError } from '../src/usage.js';

// Made now, not in beforeAll: the it.each tables below name the file.
const dir = mkdtempSync(join(tmpdir(), 'synod-nats-options-'));
const pem = join(dir, 'file.pem');
writeFileSync(pem, 'not checked here, only that it can be read');

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function config(values: Record<string, unknown>): Promise<ConfigFile> {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, JSON.stringify(values));
  return ConfigFile.read(path);
}

const NONE = ConfigFile.NONE;

describe('natsConnection', () => {
  it('defaults to nats://127.0.0.1:4222 with no login and no TLS', async () => {
    expect(await natsConnection({}, NONE, {})).toEqual({ servers: ['nats://127.0.0.1:4222'] });
  });

  it('takes each setting from the flag, else --config, else the environment', async () => {
    const file = await config({ nats: 'nats://config:1', natsUser: 'config-user' });
    const env = {
      SYNOD_NATS_URL: 'nats://env:1',
      SYNOD_NATS_USER: 'env-user',
      SYNOD_NATS_PASSWORD: 'env-password',
    };
    expect(await natsConnection({ nats: 'nats://flag:1' }, file, env)).toEqual({
      servers: ['nats://flag:1'],
      user: 'config-user',
      pass: 'env-password',
    });
    expect(await natsConnection({}, file, env)).toMatchObject({ servers: ['nats://config:1'] });
    expect(await natsConnection({}, NONE, env)).toEqual({
      servers: ['nats://env:1'],
      user: 'env-user',
      pass: 'env-password',
    });
    // An empty variable (SYNOD_NATS_URL= in a shell) is no value.
    expect(await natsConnection({}, NONE, { SYNOD_NATS_URL: '' })).toEqual({
      servers: ['nats://127.0.0.1:4222'],
    });
  });

  it('takes user and password, or a token, out of the URLs', async () => {
    expect(
      await natsConnection(
        { nats: 'nats://alice:p%40ss%3Aword@a:4222,nats://alice:p%40ss%3Aword@b:4222' },
        NONE,
        {},
      ),
    ).toEqual({ servers: ['nats://a:4222', 'nats://b:4222'], user: 'alice', pass: 'p@ss:word' });
    expect(await natsConnection({ nats: 'nats://s3cret@a:4222' }, NONE, {})).toEqual({
      servers: ['nats://a:4222'],
      token: 's3cret',
    });
  });

  it('lets a flag win over the credentials in a URL from a lower place', async () => {
    const settings = await natsConnection({ 'nats-token': 'flag-token' }, NONE, {
      SYNOD_NATS_URL: 'nats://env-token@a:4222',
    });
    expect(settings).toEqual({ servers: ['nats://a:4222'], token: 'flag-token' });
  });

  it('reads a list of URLs and the other keys from --config', async () => {
    const file = await config({
      nats: ['tls://a:4222', 'tls://b:4222'],
      natsCreds: pem,
      tlsCa: pem,
    });
    expect(await natsConnection({}, file, {})).toEqual({
      servers: ['tls://a:4222', 'tls://b:4222'],
      credentialsFile: pem,
      tls: { caFile: pem },
    });
  });

  it('turns TLS on for a tls:// URL or any --tls-* option', async () => {
    expect(await natsConnection({ nats: 'tls://a:4222' }, NONE, {})).toEqual({
      servers: ['tls://a:4222'],
      tls: {},
    });
    expect(await natsConnection({ 'tls-cert': pem, 'tls-key': pem }, NONE, {})).toEqual({
      servers: ['nats://127.0.0.1:4222'],
      tls: { certFile: pem, keyFile: pem },
    });
    expect(
      await natsConnection({}, NONE, {
        SYNOD_NATS_TLS_CA: pem,
        SYNOD_NATS_TLS_CERT: pem,
        SYNOD_NATS_TLS_KEY: pem,
      }),
    ).toEqual({
      servers: ['nats://127.0.0.1:4222'],
      tls: { caFile: pem, certFile: pem, keyFile: pem },
    });
  });

  it.each([
    [{ 'nats-token': 'hunter2', 'nats-user': 'u', 'nats-password': 'hunter2' }, /different ways/],
    [{ nats: 'nats://u:hunter2@a:1', 'nats-creds': pem }, /different ways to log in/],
    [{ 'nats-user': 'u' }, /--nats-user needs a password/],
    [{ 'nats-password': 'hunter2' }, /--nats-password needs a user/],
    [{ 'tls-cert': pem }, /--tls-cert needs both --tls-cert and --tls-key/],
    [{ 'tls-ca': join(tmpdir(), 'no-such-ca.pem') }, /--tls-ca \S+no-such-ca\.pem: no such file/],
    [{ nats: 'nats://u:hunter2@a:1,nats://v:hunter2@b:1' }, /carry different credentials/],
    [{ nats: 'https://u:hunter2@a:1' }, /must be nats:\/\/HOST:PORT .*got https:\/\/a:1$/],
  ])('refuses %j without showing the secret', async (flags, message) => {
    const attempt = natsConnection(flags, NONE, {});
    await expect(attempt).rejects.toBeInstanceOf(OptionError);
    await expect(attempt).rejects.toThrow(message);
    await expect(attempt).rejects.not.toThrow(/hunter2/);
  });

  it('takes credentials that are not valid percent-encoding as written', async () => {
    const settings = await natsConnection({ nats: 'nats://u:hunter2%zz@a:1' }, NONE, {});
    expect(settings).toMatchObject({ servers: ['nats://a:1'], user: 'u', pass: 'hunter2%zz' });
  });

  it('names where a refused value came from', async () => {
    const file = await config({ natsUser: 'u' });
    await expect(natsConnection({}, file, {})).rejects.toThrow(
      /^natsUser in --config \S+ needs a password/,
    );
    await expect(
      natsConnection({}, NONE, {
        SYNOD_NATS_TOKEN: 't',
        SYNOD_NATS_USER: 'u',
        SYNOD_NATS_PASSWORD: 'p',
      }),
    ).rejects.toThrow(/SYNOD_NATS_USER and SYNOD_NATS_TOKEN are different ways/);
  });
});

describe('ConfigFile', () => {
  it('refuses a value of the wrong type', async () => {
    const file = await config({ natsUser: 42 });
    await expect(natsConnection({}, file, {})).rejects.toThrow(
      /natsUser in --config .* must be a string/,
    );
  });

  it('refuses a file that is not one JSON object', async () => {
    const path = join(dir, 'array.json');
    await writeFile(path, '["nats://a:1"]');
    await expect(ConfigFile.read(path)).rejects.toThrow(/must hold one JSON object/);
  });
});
