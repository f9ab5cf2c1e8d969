// The extended query protocol of the SQL front end (wire.ts): what drivers use for parameters.
import type pg from 'pg';
import { assertBinarySupported, binaryToText, textToBinary } from './binary-values.js';
import { SqlError } from './errors.js';
import type { StatementDescription } from './statement-describe.js';
import {
  commandComplete,
  concat,
  dataRow,
  message,
  Reader,
  rowDescription,
} from './wire-messages.js';
import type { Prepared, Result, Session } from './wire-session.js';

/** What the extended protocol needs of the front end. */
export interface ExtendedHost {
  /** Runs one statement where the determinism guard routes it. */
  execute(
    sql: string,
    params: readonly (string | null)[],
    db: pg.Client,
    session: Session,
  ): Promise<Result[]>;
  /** Describes a statement: its parameters' and result's types. */
  describe(
    sql: string,
    declared: readonly number[],
    db: pg.Client,
    session: Session,
  ): Promise<StatementDescription>;
}

const empty = new Uint8Array();
const decoder = new TextDecoder();

/** A column's format code: none given is text, one is every column's, else one per column. */
const formatOf = (formats: readonly number[], i: number): number =>
  formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);

/**
 * One message of the extended protocol: Parse, Bind, Describe, Execute, Close, Flush (Sync is
 * answered by the caller). A portal runs at Describe (its row description needs the result)
 * or at Execute, once.
 *
 * Binary parameters are turned into text at Bind (binary-values.ts), with the types the
 * client declared or, where it declared none, the ones PostgreSQL infers: a replicated write
 * enters the log with text parameters only. A result column the client asks for in binary is
 * turned from text into binary as it is sent.
 */
export async function extendedMessage(
  type: string,
  data: Uint8Array,
  db: pg.Client,
  session: Session,
  host: ExtendedHost,
): Promise<Uint8Array> {
  const reader = new Reader(data, 5);
  const describe = async (prepared: Prepared): Promise<StatementDescription> => {
    prepared.description ??= await host.describe(prepared.sql, prepared.declared, db, session);
    return prepared.description;
  };
  switch (type) {
    case 'P': {
      const name = reader.cstring();
      const sql = reader.cstring();
      const declared = Array.from({ length: reader.int16() }, () => reader.int32() >>> 0);
      session.prepared.set(name, { sql, declared });
      return message('1', empty);
    }
    case 'B': {
      const portal = reader.cstring();
      const name = reader.cstring();
      const prepared = session.prepared.get(name);
      if (prepared === undefined)
        throw new SqlError('26000', `prepared statement "${name}" does not exist`);
      const formats = Array.from({ length: reader.int16() }, () => reader.int16());
      const raw = Array.from({ length: reader.int16() }, () => {
        const length = reader.int32();
        return length < 0 ? null : reader.bytes(length);
      });
      const resultFormats = Array.from({ length: reader.int16() }, () => reader.int16());
      const params: (string | null)[] = [];
      for (const [i, value] of raw.entries()) {
        if (value === null) params.push(null);
        else if (formatOf(formats, i) === 0) params.push(decoder.decode(value));
        else {
          const declared = prepared.declared[i] ?? 0;
          const oid = declared !== 0 ? declared : ((await describe(prepared)).params[i] ?? 0);
          params.push(binaryToText(oid, value));
        }
      }
      session.portals.set(portal, { sql: prepared.sql, params, resultFormats, results: undefined });
      return message('2', empty);
    }
    case 'D': {
      const kind = String.fromCharCode(reader.byte());
      const name = reader.cstring();
      if (kind === 'S') {
        const prepared = session.prepared.get(name);
        if (prepared === undefined)
          throw new SqlError('26000', `prepared statement "${name}" does not exist`);
        const { params, fields } = await describe(prepared);
        const types = new Uint8Array(2 + 4 * params.length);
        const view = new DataView(types.buffer);
        view.setInt16(0, params.length);
        for (const [i, oid] of params.entries()) view.setUint32(2 + 4 * i, oid);
        return concat([
          message('t', types),
          fields === undefined || fields.length === 0
            ? message('n', empty)
            : rowDescription(fields),
        ]);
      }
      const portal = session.portals.get(name);
      if (portal === undefined) throw new SqlError('34000', `portal "${name}" does not exist`);
      portal.results ??= await host.execute(portal.sql, portal.params, db, session);
      const first = portal.results[0];
      if (first === undefined || first.fields.length === 0) return message('n', empty);
      return rowDescription(first.fields, columnFormats(first.fields, portal.resultFormats));
    }
    case 'E': {
      const name = reader.cstring();
      const portal = session.portals.get(name);
      if (portal === undefined) throw new SqlError('34000', `portal "${name}" does not exist`);
      const results =
        portal.results ?? (await host.execute(portal.sql, portal.params, db, session));
      portal.results = [];
      const out: Uint8Array[] = [];
      for (const result of results) {
        if (result.empty) {
          out.push(message('I', empty));
          continue;
        }
        const formats = columnFormats(result.fields, portal.resultFormats);
        for (const row of result.rows)
          out.push(
            dataRow(
              row.map((value, i) =>
                value !== null && formats[i] === 1
                  ? textToBinary(result.fields[i]!.dataTypeID, value)
                  : value,
              ),
            ),
          );
        out.push(commandComplete(result.tag));
      }
      return concat(out);
    }
    case 'C': {
      const kind = String.fromCharCode(reader.byte());
      const name = reader.cstring();
      if (kind === 'S') session.prepared.delete(name);
      else session.portals.delete(name);
      return message('3', empty);
    }
    case 'H':
      return empty;
    default:
      throw new SqlError('08P01', `unexpected message ${JSON.stringify(type)}`);
  }
}

/**
 * Each result column's format code as Bind asked for it. Refuses binary results of a type
 * binary-values.ts cannot write, before any row is sent.
 */
function columnFormats(fields: readonly pg.FieldDef[], asked: readonly number[]): number[] {
  return fields.map((field, i) => {
    const format = formatOf(asked, i);
    if (format === 1) assertBinarySupported(field.dataTypeID);
    return format;
  });
}
