// The PostgreSQL wire protocol's backend messages and a reader of frontend ones, as the
// SQL front end (wire.ts) writes and reads them.
import type pg from 'pg';
import { BackendError } from 'pg-gateway';

/** Reads a frontend message's fields. */
export class Reader {
  readonly #view: DataView;
  readonly #data: Uint8Array;
  #at: number;

  constructor(data: Uint8Array, at: number) {
    this.#data = data;
    this.#view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.#at = at;
  }

  byte(): number {
    return this.#view.getUint8(this.#at++);
  }

  int16(): number {
    const value = this.#view.getInt16(this.#at);
    this.#at += 2;
    return value;
  }

  int32(): number {
    const value = this.#view.getInt32(this.#at);
    this.#at += 4;
    return value;
  }

  cstring(): string {
    const end = this.#data.indexOf(0, this.#at);
    const text = new TextDecoder().decode(this.#data.subarray(this.#at, end));
    this.#at = end + 1;
    return text;
  }

  /** The next `length` bytes, copied (the message's buffer may be reused). */
  bytes(length: number): Uint8Array {
    const bytes = this.#data.slice(this.#at, this.#at + length);
    this.#at += length;
    return bytes;
  }
}

export const encoder = new TextEncoder();

/** A backend message: type byte, length, body. */
export function message(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

export const cstring = (text: string): Uint8Array => encoder.encode(`${text}\0`);

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export const commandComplete = (tag: string): Uint8Array => message('C', cstring(tag));

/** A message handled with nothing to send: pg-gateway takes a non-empty iterable as "handled". */
export const consumed = (): Uint8Array[] => [new Uint8Array(0)];
export const readyForQuery = (status: 'I' | 'T' | 'E'): Uint8Array =>
  message('Z', encoder.encode(status));

/** `formats`: each column's format code (0 text, 1 binary); text when absent. */
export function rowDescription(
  fields: readonly pg.FieldDef[],
  formats: readonly number[] = [],
): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([0, 0])];
  new DataView(parts[0]!.buffer).setInt16(0, fields.length);
  for (const [i, field] of fields.entries()) {
    const meta = new Uint8Array(18);
    const view = new DataView(meta.buffer);
    view.setInt32(0, field.tableID);
    view.setInt16(4, field.columnID);
    view.setInt32(6, field.dataTypeID);
    view.setInt16(10, field.dataTypeSize);
    view.setInt32(12, field.dataTypeModifier);
    view.setInt16(16, formats[i] ?? 0);
    parts.push(cstring(field.name), meta);
  }
  return message('T', concat(parts));
}

/** A row; a string value goes as UTF-8 text, bytes as they are (a binary-format column). */
export function dataRow(values: readonly (string | Uint8Array | null)[]): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array(2)];
  new DataView(parts[0]!.buffer).setInt16(0, values.length);
  for (const value of values) {
    const length = new Uint8Array(4);
    if (value === null) {
      new DataView(length.buffer).setInt32(0, -1);
      parts.push(length);
    } else {
      const bytes = typeof value === 'string' ? encoder.encode(value) : value;
      new DataView(length.buffer).setInt32(0, bytes.length);
      parts.push(length, bytes);
    }
  }
  return message('D', concat(parts));
}

/** PostgreSQL's command tag for a result: INSERT has the (always 0) oid before the count. */
export function tag(command: string, rowCount: number | null): string {
  if (command === 'INSERT') return `INSERT 0 ${rowCount ?? 0}`;
  return ['SELECT', 'UPDATE', 'DELETE', 'MERGE', 'FETCH', 'MOVE', 'COPY'].includes(command)
    ? `${command} ${rowCount ?? 0}`
    : command;
}

export function errorResponse(
  code: string,
  text: string,
  position?: number,
  hint?: string,
): Uint8Array {
  return BackendError.create({
    severity: 'ERROR',
    code,
    message: text,
    ...(position === undefined ? {} : { position: String(position) }),
    ...(hint === undefined ? {} : { hint }),
  }).flush();
}
