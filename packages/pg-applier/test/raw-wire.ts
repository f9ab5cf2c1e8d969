// A bare PostgreSQL wire client for tests: what a driver such as pgx or JDBC sends in the
// extended protocol (Describe of a statement, binary parameters, binary results), and the
// raw bytes of what comes back. node-postgres cannot show those: it decodes every result
// value as UTF-8 text.
import { connect, type Socket } from 'node:net';
import { serialize } from 'pg-protocol';

export interface Reply {
  /** ParameterDescription: the parameters' type OIDs. */
  readonly params?: readonly number[];
  /** RowDescription: each column's name, type OID and format code. */
  readonly fields?: readonly { name: string; type: number; format: number }[];
  readonly rows: (Buffer | null)[][];
  readonly tags: string[];
  /** ErrorResponse: SQLSTATE and message. */
  readonly error?: { code: string; message: string };
}

export class RawWire {
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);
  #waiting: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiting?.();
    });
  }

  static async open(port: number): Promise<RawWire> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const wire = new RawWire(socket);
    socket.write(serialize.startup({ user: 'postgres', database: 'postgres' }));
    await wire.#untilReady();
    return wire;
  }

  /**
   * Parse (with the declared types), Describe the statement, Bind (a Buffer is a binary
   * parameter, a string a text one; `binaryResults` asks for every column in binary),
   * Describe the portal, Execute, Sync.
   */
  async extended(
    sql: string,
    values: readonly (Buffer | string | null)[],
    options: { types?: number[]; binaryResults?: boolean } = {},
  ): Promise<Reply> {
    this.#socket.write(
      Buffer.concat([
        serialize.parse({ text: sql, types: options.types ?? [] }),
        serialize.describe({ type: 'S' }),
        serialize.bind({ values: [...values], binary: options.binaryResults ?? false }),
        serialize.describe({ type: 'P' }),
        serialize.execute(),
        serialize.sync(),
      ]),
    );
    return this.#untilReady();
  }

  async close(): Promise<void> {
    this.#socket.end(serialize.end());
    await new Promise((resolve) => this.#socket.once('close', resolve));
  }

  /** Every message up to ReadyForQuery, gathered into a Reply. */
  async #untilReady(): Promise<Reply> {
    const reply: {
      params?: number[];
      fields?: { name: string; type: number; format: number }[];
      rows: (Buffer | null)[][];
      tags: string[];
      error?: { code: string; message: string };
    } = { rows: [], tags: [] };
    for (;;) {
      while (this.#buffer.length < 5 || this.#buffer.length < 1 + this.#buffer.readInt32BE(1))
        await new Promise<void>((resolve) => {
          this.#waiting = resolve;
        });
      const type = String.fromCharCode(this.#buffer[0]!);
      const length = this.#buffer.readInt32BE(1);
      const body = this.#buffer.subarray(5, 1 + length);
      this.#buffer = this.#buffer.subarray(1 + length);
      if (type === 'Z') return reply;
      if (type === 't')
        reply.params = Array.from({ length: body.readInt16BE(0) }, (_, i) =>
          body.readUInt32BE(2 + 4 * i),
        );
      else if (type === 'T') {
        reply.fields = [];
        let at = 2;
        for (let i = 0; i < body.readInt16BE(0); i++) {
          const end = body.indexOf(0, at);
          const name = body.subarray(at, end).toString();
          at = end + 1;
          reply.fields.push({
            name,
            type: body.readUInt32BE(at + 6),
            format: body.readInt16BE(at + 16),
          });
          at += 18;
        }
      } else if (type === 'D') {
        const row: (Buffer | null)[] = [];
        let at = 2;
        for (let i = 0; i < body.readInt16BE(0); i++) {
          const size = body.readInt32BE(at);
          at += 4;
          row.push(size < 0 ? null : Buffer.from(body.subarray(at, at + size)));
          at += Math.max(size, 0);
        }
        reply.rows.push(row);
      } else if (type === 'C') reply.tags.push(body.subarray(0, body.length - 1).toString());
      else if (type === 'E') {
        const fields = new Map<string, string>();
        let at = 0;
        while (body[at] !== 0) {
          const end = body.indexOf(0, at + 1);
          fields.set(String.fromCharCode(body[at]!), body.subarray(at + 1, end).toString());
          at = end + 1;
        }
        reply.error = { code: fields.get('C') ?? '', message: fields.get('M') ?? '' };
      }
    }
  }
}
