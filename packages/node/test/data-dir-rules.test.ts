// The admission rules without I/O: what a peer answers to a node asking to vote, what the
// node decides from the answers, and the identity messages' validation.
import { describe, expect, it } from 'vitest';
import { type Asker, decide, judge, type ResponderView } from '../src/admission-rules.js';
import { mergeRegistry, pruneRegistry, type Registry } from '../src/identity-file.js';
import {
  decodeIdentityAnswer,
  decodeIdentityRequest,
  encodeIdentity,
  type IdentityAnswer,
  type IdentityRequest,
} from '../src/identity-messages.js';

const founders = ['a', 'b', 'c'];
const OLD = 'c-old-incarnation';
const NEW = 'c-new-incarnation';

const request = (extra: Partial<IdentityRequest> = {}): IdentityRequest => ({
  type: 'identity-request',
  v: 1,
  group: 'g',
  node: 'c',
  incarnation: NEW,
  voting: false,
  join: false,
  founders,
  ...extra,
});

const view = (extra: Partial<ResponderView> = {}): ResponderView => ({
  node: 'a',
  founders,
  members: ['a', 'b', 'c'],
  known: {},
  ...extra,
});

const asker = (extra: Partial<Asker> = {}): Asker => ({
  group: 'g',
  node: 'c',
  dir: '/data/c',
  incarnation: NEW,
  join: false,
  founders,
  ...extra,
});

const answer = (
  node: string,
  verdict: IdentityAnswer['verdict'],
  extra: Partial<IdentityAnswer> = {},
): IdentityAnswer => ({
  type: 'identity-answer',
  v: 1,
  group: 'g',
  node,
  incarnation: `${node}-incarnation`,
  voting: true,
  founders,
  members: founders,
  verdict,
  known: {},
  ...extra,
});

describe('what a peer answers (judge)', () => {
  it('a waiting peer records a node it does not know, and refuses another incarnation of one it does', () => {
    const waiting = view({ members: null });
    expect(judge(waiting, request())).toEqual({ verdict: 'recorded', record: true });
    const knows = (incarnation: string) =>
      view({ members: null, known: { c: { incarnation, at: 1 } } });
    expect(judge(knows(NEW), request())).toEqual({ verdict: 'recorded', record: false });
    expect(judge(knows(OLD), request())).toEqual({ verdict: 'conflict', record: false });
  });

  it('a voting peer refuses a member that voted under another incarnation, and records one that never did', () => {
    const known = { c: { incarnation: OLD, at: 1 } };
    expect(judge(view({ known }), request())).toEqual({ verdict: 'conflict', record: false });
    expect(judge(view({ known }), request({ join: true }))).toEqual({
      verdict: 'conflict',
      record: false,
    });
    // A founder that starts late, or a node added before it ran: nobody recorded it.
    expect(judge(view(), request())).toEqual({ verdict: 'recorded', record: true });
  });

  it('a node the log no longer lists must ask to join; then its new incarnation replaces the old', () => {
    const left = view({ members: ['a', 'b'], known: { c: { incarnation: OLD, at: 1 } } });
    expect(judge(left, request())).toEqual({ verdict: 'not-member', record: false });
    expect(judge(left, request({ join: true }))).toEqual({ verdict: 'recorded', record: true });
  });

  it('nodes that name different founders do not judge each other', () => {
    expect(judge(view(), request({ founders: ['a', 'b', 'd'] })).verdict).toBe('founders-differ');
  });
});

describe('what the asking node decides', () => {
  it('waits until a strict majority of the other founders recorded it: for three, both', () => {
    expect(decide(asker(), [])).toMatchObject({ kind: 'waiting', need: 2, have: 0 });
    expect(
      decide(asker(), [answer('a', 'recorded', { voting: false, members: null })]),
    ).toMatchObject({ kind: 'waiting', need: 2, have: 1, missing: ['b'] });
    const both = ['a', 'b'].map((n) => answer(n, 'recorded', { voting: false, members: null }));
    expect(decide(asker(), both)).toEqual({ kind: 'admitted' });
    // Its own answer (its responder hears its own request) counts for nothing.
    expect(decide(asker(), [answer('a', 'recorded'), answer('c', 'recorded')]).kind).toBe(
      'waiting',
    );
  });

  it('a group of one admits its founder at once: nobody could witness', () => {
    expect(decide(asker({ node: 'a', founders: ['a'] }), [])).toEqual({ kind: 'admitted' });
  });

  it('judges by the members in the voting peers logs: every list reported must be satisfied', () => {
    // d joined; a lags behind the change. Under {a, b, c, d}, c needs 2 of a, b, d; under the
    // members a still sees, 2 of a, b.
    const answers = [
      answer('a', 'recorded', { members: ['a', 'b', 'c'] }),
      answer('d', 'recorded', { members: ['a', 'b', 'c', 'd'] }),
    ];
    expect(decide(asker(), answers)).toMatchObject({ kind: 'waiting', missing: ['b'] });
    const b = answer('b', 'recorded', { members: ['a', 'b', 'c', 'd'] });
    expect(decide(asker(), [...answers, b])).toEqual({ kind: 'admitted' });
    expect(decide(asker(), [answers[1]!, b])).toEqual({ kind: 'admitted' });
  });

  it('is refused as a lost disk, with the way to replace it, when any peer knows it voted', () => {
    const answers = [
      answer('a', 'recorded'),
      answer('b', 'conflict', { known: { c: { incarnation: OLD, at: 1 } } }),
    ];
    const decision = decide(asker(), answers);
    expect(decision.kind).toBe('refused');
    const error = (decision as { error: Error & { code: string } }).error;
    expect(error.code).toBe('LOST_DISK');
    expect(error.message).toBe(
      `node c of group g has no acceptor state in /data/c, but peer b knows it as a member that already voted (incarnation ${OLD}): its promises and accepted values are lost, so it must not vote again; replace it: run \`synod group leave --group g c\`, then start c again with --join (its directory may stay as it is)`,
    );
    const joining = decide(asker({ join: true }), answers) as { error: { code: string } };
    expect(joining.error.code).toBe('STILL_A_MEMBER');
  });

  it('is told to use --join when the log no longer lists it, and refuses founders that differ', () => {
    const gone = decide(asker(), [answer('a', 'not-member', { members: ['a', 'b'] })]);
    expect(gone).toMatchObject({ kind: 'refused', error: { code: 'NOT_A_MEMBER' } });
    const differ = decide(asker(), [answer('a', 'founders-differ', { founders: ['a', 'b', 'd'] })]);
    expect(differ).toMatchObject({ kind: 'refused', error: { code: 'FOUNDERS_DIFFER' } });
    expect((differ as { error: Error }).error.message).toMatch(/names a,b,d: every node/);
  });
});

describe('registries and messages', () => {
  it('merging keeps what is new, lets the later record of a node win, and never takes its own', () => {
    const mine = { a: { incarnation: 'a-one-incarnation', at: 10 } };
    expect(mergeRegistry(mine, mine, 'c')).toBeUndefined();
    expect(
      mergeRegistry(
        mine,
        {
          a: { incarnation: 'a-two-incarnation', at: 20 },
          c: { incarnation: 'c-anything-else', at: 30 },
        },
        'c',
      ),
    ).toEqual({ a: { incarnation: 'a-two-incarnation', at: 20 } });
    expect(mergeRegistry(mine, { a: { incarnation: 'a-zero-incarnation', at: 5 } }, 'c')).toBe(
      undefined,
    );
  });

  it('is cut back when requests name many made-up nodes, keeping the founders and the latest', () => {
    const many: Record<string, { incarnation: string; at: number }> = {
      a: { incarnation: 'a-founder-incarnation', at: 0 },
    };
    for (let i = 0; i < 700; i++)
      many[`fake${i}`] = { incarnation: `fake-incarnation-${i}`, at: i + 1 };
    const pruned: Registry = pruneRegistry(many, founders);
    expect(Object.keys(pruned)).toHaveLength(500);
    expect(pruned.a?.incarnation).toBe('a-founder-incarnation');
    expect(pruned.fake699).toBeDefined();
    expect(pruned.fake0).toBeUndefined();
    expect(pruneRegistry(pruned, founders)).toBe(pruned);
  });

  it('decodes what it encodes, and drops malformed or foreign messages', () => {
    const good = request();
    expect(decodeIdentityRequest(encodeIdentity(good), 'g')).toEqual(good);
    expect(decodeIdentityAnswer(encodeIdentity(answer('a', 'recorded')), 'g')).toEqual(
      answer('a', 'recorded'),
    );
    const bad: unknown[] = [
      { ...good, group: 'other' },
      { ...good, v: 2 },
      { ...good, node: 'no.dots' },
      { ...good, incarnation: 'short' },
      { ...good, founders: ['a', 'a'] },
      { ...good, founders: [] },
      { ...good, join: 'yes' },
      { ...answer('a', 'recorded'), type: 'identity-request' },
    ];
    for (const message of bad)
      expect(
        decodeIdentityRequest(new TextEncoder().encode(JSON.stringify(message)), 'g'),
        JSON.stringify(message),
      ).toBeUndefined();
    const badAnswers: unknown[] = [
      { ...answer('a', 'recorded'), verdict: 'maybe' },
      { ...answer('a', 'recorded'), known: { c: { incarnation: NEW } } },
      { ...answer('a', 'recorded'), members: ['x y'] },
    ];
    for (const message of badAnswers)
      expect(
        decodeIdentityAnswer(new TextEncoder().encode(JSON.stringify(message)), 'g'),
      ).toBeUndefined();
    expect(decodeIdentityRequest(new TextEncoder().encode('{'), 'g')).toBeUndefined();
    expect(decodeIdentityRequest(new Uint8Array([0xff, 0xfe]), 'g')).toBeUndefined();
    const huge = JSON.stringify({ ...good, pad: 'x'.repeat(200_000) });
    expect(decodeIdentityRequest(new TextEncoder().encode(huge), 'g')).toBeUndefined();
  });
});
