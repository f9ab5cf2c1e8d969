import { describe, expect, it } from 'vitest';
import {
  DecodeError,
  decodeMembership,
  encodeMembership,
  InvalidNameError,
  isMajorityOf,
  Membership,
} from '../src/index.js';

describe('membership values', () => {
  it('round-trip, sorted, and are told apart from other values', () => {
    const value = encodeMembership(['c', 'a', 'b']);
    expect(decodeMembership(value)).toEqual(['a', 'b', 'c']);
    expect(decodeMembership(new TextEncoder().encode('{"members":["a"]}'))).toBeUndefined();
    expect(decodeMembership(new Uint8Array(0))).toBeUndefined();
  });

  it('refuse an empty list, a member twice and a bad node id, with typed errors', () => {
    expect(() => encodeMembership([])).toThrow(RangeError);
    expect(() => encodeMembership(['a', 'a'])).toThrow(/twice/);
    expect(() => encodeMembership(['a.b'])).toThrow(InvalidNameError);
  });

  it('a damaged change is a DecodeError, and no change at all to the log', () => {
    const damaged = new Uint8Array([0xc1, 0x7b]);
    expect(() => decodeMembership(damaged)).toThrow(DecodeError);
    const members = new Membership(['a'], [], 4);
    expect(members.after(0, damaged)).toBe(members);
  });
});

describe('Membership over the log', () => {
  const m = new Membership(['a', 'b', 'c'], [], 4).withChange(10, ['c', 'd', 'e']);

  it('a change governs slots from its slot plus the window', () => {
    expect(m.membersAt(13)).toEqual(['a', 'b', 'c']);
    expect(m.membersAt(14)).toEqual(['c', 'd', 'e']);
    expect(m.latest).toEqual(['c', 'd', 'e']);
  });

  it('lists every member set that governs a slot from a point on', () => {
    expect(m.configsFrom(12)).toEqual([
      ['a', 'b', 'c'],
      ['c', 'd', 'e'],
    ]);
    expect(m.configsFrom(14)).toEqual([['c', 'd', 'e']]);
  });

  it('keeps only the changes a snapshot covers, and survives its record', () => {
    expect(m.through(9).latest).toEqual(['a', 'b', 'c']);
    const copy = Membership.from(JSON.parse(JSON.stringify(m.toRecord())));
    expect(copy.membersAt(14)).toEqual(['c', 'd', 'e']);
    expect(copy.window).toBe(4);
  });

  it('a change with "from" holds only over those members (compare and set)', () => {
    const start = new Membership(['a', 'b', 'c'], [], 4);
    const addD = encodeMembership(['a', 'b', 'c', 'd'], ['c', 'b', 'a']);
    const addE = encodeMembership(['a', 'b', 'c', 'e'], ['a', 'b', 'c']);
    const afterD = start.after(5, addD);
    expect(afterD.latest).toEqual(['a', 'b', 'c', 'd']);
    // Computed from the same members as the change before it: it holds nowhere.
    expect(afterD.after(6, addE)).toBe(afterD);
    // Without "from", a change always holds; a value that is not a change changes nothing.
    expect(afterD.after(7, encodeMembership(['a'])).latest).toEqual(['a']);
    expect(afterD.after(8, new TextEncoder().encode('{}'))).toBe(afterD);
    expect(afterD.after(9, new Uint8Array([0xc1, 0x7b]))).toBe(afterD);
  });

  it('a majority counts members only', () => {
    expect(isMajorityOf(new Set(['a', 'x', 'y']), ['a', 'b', 'c'])).toBe(false);
    expect(isMajorityOf(new Set(['a', 'c']), ['a', 'b', 'c'])).toBe(true);
  });
});
