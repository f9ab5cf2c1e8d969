import { SqlError } from './errors.js';

/**
 * PostgreSQL's binary format of the common types, to and from its text format.
 *
 * The front end takes binary parameters (node-postgres sends a Buffer so, pgx and JDBC send
 * many types so) and turns them into text before a write enters the log: the log carries
 * text, which every replica parses alike. Results a client asks for in binary are turned
 * back from the text the node's database gave. The text forms are PostgreSQL's output with
 * the server's defaults (DateStyle ISO, bytea_output hex), which is what the front end's own
 * connections read.
 *
 * A type outside this list is refused (0A000) rather than guessed at; arrays and ranges are.
 */
const TYPES: Readonly<Record<number, string>> = {
  16: 'bool',
  17: 'bytea',
  18: 'char',
  19: 'name',
  20: 'int8',
  21: 'int2',
  23: 'int4',
  25: 'text',
  26: 'oid',
  114: 'json',
  700: 'float4',
  701: 'float8',
  705: 'unknown',
  1042: 'bpchar',
  1043: 'varchar',
  1082: 'date',
  1114: 'timestamp',
  1184: 'timestamptz',
  1700: 'numeric',
  2950: 'uuid',
  3802: 'jsonb',
};

const TEXT_TYPES = new Set(['char', 'name', 'text', 'json', 'unknown', 'bpchar', 'varchar']);

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** 2000-01-01, PostgreSQL's epoch for dates and timestamps, in Unix milliseconds. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
const MS_PER_DAY = 86_400_000;
const INFINITY_MICROS = 0x7fffffffffffffffn;
const MINUS_INFINITY_MICROS = -0x8000000000000000n;

function unsupported(oid: number): SqlError {
  const name = TYPES[oid];
  return new SqlError(
    '0A000',
    `the binary format of type ${name ?? `oid ${oid}`} is not supported; use the text format for it`,
  );
}

function invalid(type: string, detail: string): SqlError {
  return new SqlError('22P03', `invalid binary ${type} value: ${detail}`);
}

/** Refuses a type whose binary format is not converted here, naming it (0A000). */
export function assertBinarySupported(oid: number): void {
  if (TYPES[oid] === undefined) throw unsupported(oid);
}

/** A binary parameter of type `oid` in PostgreSQL's text format. */
export function binaryToText(oid: number, bytes: Uint8Array): string {
  const type = TYPES[oid];
  if (type === undefined) throw unsupported(oid);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = (n: number) => {
    if (bytes.length !== n) throw invalid(type, `${bytes.length} bytes, not ${n}`);
  };
  if (TEXT_TYPES.has(type)) return utf8(type, bytes);
  switch (type) {
    case 'bool':
      size(1);
      return bytes[0] === 0 ? 'f' : 't';
    case 'bytea':
      return `\\x${Buffer.from(bytes).toString('hex')}`;
    case 'int2':
      size(2);
      return String(view.getInt16(0));
    case 'int4':
      size(4);
      return String(view.getInt32(0));
    case 'oid':
      size(4);
      return String(view.getUint32(0));
    case 'int8':
      size(8);
      return view.getBigInt64(0).toString();
    case 'float4':
      size(4);
      // Nine significant digits name a float4 exactly: float4in reads back the same value.
      return floatText(view.getFloat32(0), (v) => String(Number(v.toPrecision(9))));
    case 'float8':
      size(8);
      return floatText(view.getFloat64(0), String);
    case 'jsonb':
      if (bytes[0] !== 1) throw invalid(type, `version ${bytes[0]}, not 1`);
      return utf8(type, bytes.subarray(1));
    case 'uuid': {
      size(16);
      const hex = Buffer.from(bytes).toString('hex');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    }
    case 'date': {
      size(4);
      const days = view.getInt32(0);
      if (days === 0x7fffffff) return 'infinity';
      if (days === -0x80000000) return '-infinity';
      return dateText(PG_EPOCH_MS + days * MS_PER_DAY);
    }
    case 'timestamp':
    case 'timestamptz': {
      size(8);
      const micros = view.getBigInt64(0);
      if (micros === INFINITY_MICROS) return 'infinity';
      if (micros === MINUS_INFINITY_MICROS) return '-infinity';
      return timestampText(micros) + (type === 'timestamptz' ? '+00' : '');
    }
    case 'numeric':
      return numericText(view);
    default:
      throw unsupported(oid);
  }
}

/** A value in PostgreSQL's text format as the binary format of type `oid`. */
export function textToBinary(oid: number, text: string): Uint8Array {
  const type = TYPES[oid];
  if (type === undefined) throw unsupported(oid);
  if (TEXT_TYPES.has(type)) return encoder.encode(text);
  const fixed = (n: number, write: (view: DataView) => void) => {
    const out = new Uint8Array(n);
    write(new DataView(out.buffer));
    return out;
  };
  switch (type) {
    case 'bool':
      return new Uint8Array([text === 't' || text === 'true' ? 1 : 0]);
    case 'bytea':
      if (!text.startsWith('\\x'))
        throw new SqlError('22P03', 'bytea text is not in the hex format');
      return new Uint8Array(Buffer.from(text.slice(2), 'hex'));
    case 'int2':
      return fixed(2, (v) => v.setInt16(0, Number(text)));
    case 'int4':
      return fixed(4, (v) => v.setInt32(0, Number(text)));
    case 'oid':
      return fixed(4, (v) => v.setUint32(0, Number(text)));
    case 'int8':
      return fixed(8, (v) => v.setBigInt64(0, BigInt(text)));
    case 'float4':
      return fixed(4, (v) => v.setFloat32(0, floatValue(text)));
    case 'float8':
      return fixed(8, (v) => v.setFloat64(0, floatValue(text)));
    case 'jsonb': {
      const body = encoder.encode(text);
      const out = new Uint8Array(1 + body.length);
      out[0] = 1;
      out.set(body, 1);
      return out;
    }
    case 'uuid':
      return new Uint8Array(Buffer.from(text.replaceAll('-', ''), 'hex'));
    case 'date':
      return fixed(4, (v) =>
        v.setInt32(
          0,
          text === 'infinity'
            ? 0x7fffffff
            : text === '-infinity'
              ? -0x80000000
              : Math.round((parseDate(text) - PG_EPOCH_MS) / MS_PER_DAY),
        ),
      );
    case 'timestamp':
    case 'timestamptz':
      return fixed(8, (v) => v.setBigInt64(0, timestampMicros(text)));
    case 'numeric':
      return numericBinary(text);
    default:
      throw unsupported(oid);
  }
}

function utf8(type: string, bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw invalid(type, 'not UTF-8');
  }
}

function floatText(value: number, finite: (v: number) => string): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return 'Infinity';
  if (value === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (Object.is(value, -0)) return '-0';
  return finite(value);
}

function floatValue(text: string): number {
  if (text === 'NaN') return Number.NaN;
  if (text === 'Infinity') return Number.POSITIVE_INFINITY;
  if (text === '-Infinity') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

const pad = (n: number | bigint, width: number) => String(n).padStart(width, '0');

/** A day as ISO text; years before 1 as PostgreSQL writes them (`0044-03-15 BC`). */
function dateText(ms: number): string {
  const day = new Date(ms);
  const year = day.getUTCFullYear();
  const text = `${pad(year > 0 ? year : 1 - year, 4)}-${pad(day.getUTCMonth() + 1, 2)}-${pad(day.getUTCDate(), 2)}`;
  return year > 0 ? text : `${text} BC`;
}

/** Unix milliseconds of `YYYY-MM-DD[ BC]` at midnight UTC. */
function parseDate(text: string): number {
  const match = /^(\d{4,})-(\d{2})-(\d{2})( BC)?/.exec(text);
  if (match === null) throw new SqlError('22007', `cannot read date ${JSON.stringify(text)}`);
  const year = Number(match[1]);
  const day = new Date(0);
  day.setUTCFullYear(
    match[4] === undefined ? year : 1 - year,
    Number(match[2]) - 1,
    Number(match[3]),
  );
  return day.getTime();
}

function timestampText(micros: bigint): string {
  const perDay = 86_400_000_000n;
  let days = micros / perDay;
  let rest = micros % perDay;
  if (rest < 0n) {
    rest += perDay;
    days -= 1n;
  }
  const seconds = rest / 1_000_000n;
  const fraction = rest % 1_000_000n;
  const time = `${pad(seconds / 3600n, 2)}:${pad((seconds / 60n) % 60n, 2)}:${pad(seconds % 60n, 2)}`;
  const text = dateText(PG_EPOCH_MS + Number(days) * MS_PER_DAY);
  const [date, era] = text.split(' ');
  const fractionText = fraction === 0n ? '' : `.${pad(fraction, 6).replace(/0+$/, '')}`;
  return `${date} ${time}${fractionText}${era === undefined ? '' : ` ${era}`}`;
}

/** Microseconds since 2000-01-01 UTC of a timestamp's text, with its UTC offset if it has one. */
function timestampMicros(text: string): bigint {
  if (text === 'infinity') return INFINITY_MICROS;
  if (text === '-infinity') return MINUS_INFINITY_MICROS;
  const match =
    /^(\d{4,}-\d{2}-\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( BC)?$/.exec(
      text,
    );
  if (match === null) throw new SqlError('22007', `cannot read timestamp ${JSON.stringify(text)}`);
  const days = BigInt(
    Math.round((parseDate(`${match[1]!}${match[10] ?? ''}`) - PG_EPOCH_MS) / MS_PER_DAY),
  );
  const seconds = BigInt(Number(match[2]) * 3600 + Number(match[3]) * 60 + Number(match[4]));
  const micros = BigInt((match[5] ?? '').padEnd(6, '0'));
  const offset =
    match[6] === undefined
      ? 0n
      : BigInt(
          (match[6] === '-' ? -1 : 1) *
            (Number(match[7]) * 3600 + Number(match[8] ?? 0) * 60 + Number(match[9] ?? 0)),
        );
  return (days * 86_400n + seconds - offset) * 1_000_000n + micros;
}

const NUMERIC_POS = 0x0000;
const NUMERIC_NEG = 0x4000;
const NUMERIC_NAN = 0xc000;
const NUMERIC_PINF = 0xd000;
const NUMERIC_NINF = 0xf000;

/** numeric's binary form: base-10000 digits, the weight of the first, sign, display scale. */
function numericText(view: DataView): string {
  if (view.byteLength < 8) throw invalid('numeric', `${view.byteLength} bytes`);
  const count = view.getInt16(0);
  const weight = view.getInt16(2);
  const sign = view.getUint16(4);
  const scale = view.getInt16(6);
  if (view.byteLength !== 8 + 2 * count)
    throw invalid('numeric', `${view.byteLength} bytes for ${count} digits`);
  if (sign === NUMERIC_NAN) return 'NaN';
  if (sign === NUMERIC_PINF) return 'Infinity';
  if (sign === NUMERIC_NINF) return '-Infinity';
  const digits = Array.from({ length: count }, (_, i) => view.getInt16(8 + 2 * i));
  let whole = '';
  for (let i = 0; i <= weight; i++)
    whole += i === 0 ? String(digits[i] ?? 0) : pad(digits[i] ?? 0, 4);
  if (whole === '') whole = '0';
  // Digit i counts 10000^(weight - i): the first fractional one is i = weight + 1; those
  // before the first stored digit or after the last are zeros.
  let fraction = '';
  for (let i = weight + 1; fraction.length < scale; i++)
    fraction += i < 0 || i >= count ? '0000' : pad(digits[i]!, 4);
  fraction = fraction.slice(0, scale);
  const text = scale > 0 ? `${whole}.${fraction}` : whole;
  return sign === NUMERIC_NEG ? `-${text}` : text;
}

function numericBinary(text: string): Uint8Array {
  const header = (count: number, weight: number, sign: number, scale: number) => {
    const out = new Uint8Array(8 + 2 * count);
    const view = new DataView(out.buffer);
    view.setInt16(0, count);
    view.setInt16(2, weight);
    view.setUint16(4, sign);
    view.setInt16(6, scale);
    return { out, view };
  };
  if (text === 'NaN') return header(0, 0, NUMERIC_NAN, 0).out;
  // PostgreSQL sends the infinities with display scale 32 (its NUMERIC_DSCALE of them).
  if (text === 'Infinity') return header(0, 0, NUMERIC_PINF, 32).out;
  if (text === '-Infinity') return header(0, 0, NUMERIC_NINF, 32).out;
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (match === null) throw new SqlError('22P02', `cannot read numeric ${JSON.stringify(text)}`);
  const whole = match[2]!.replace(/^0+/, '');
  const fraction = match[3] ?? '';
  const scale = fraction.length;
  // Group into base-10000 digits aligned on the decimal point.
  const left = whole.padStart(Math.ceil(whole.length / 4) * 4, '0');
  const right = fraction.padEnd(Math.ceil(fraction.length / 4) * 4, '0');
  let groups = [...(left.match(/.{4}/g) ?? []), ...(right.match(/.{4}/g) ?? [])].map(Number);
  let weight = left.length / 4 - 1;
  while (groups.length > 0 && groups[0] === 0) {
    groups = groups.slice(1);
    weight -= 1;
  }
  while (groups.length > 0 && groups.at(-1) === 0) groups = groups.slice(0, -1);
  if (groups.length === 0) weight = 0;
  const { out, view } = header(
    groups.length,
    weight,
    match[1] === '-' ? NUMERIC_NEG : NUMERIC_POS,
    scale,
  );
  for (const [i, group] of groups.entries()) view.setInt16(8 + 2 * i, group);
  return out;
}
