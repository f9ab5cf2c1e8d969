/** Bounds the decoder enforces: everything a peer or client sends is bounded. */
export const LIMITS = {
  /** Default largest encoded message, in bytes (configurable per codec). */
  maxMessageBytes: 1024 * 1024,
  /** Longest register key, in UTF-16 code units. */
  maxKeyLength: 1024,
  /** Most entries in one promise or catch-up response. */
  maxEntries: 65_536,
  /** Longest client id. */
  maxClientIdLength: 128,
  /** Longest error message text. */
  maxErrorMessageLength: 8192,
  /** Deepest nesting of plain data inside a command or result. */
  maxDepth: 32,
} as const;

export interface CodecOptions {
  /** Largest encoded message accepted or produced, in bytes. Default 1 MiB. */
  readonly maxMessageBytes?: number;
}
