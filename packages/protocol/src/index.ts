export {
  type Ballot,
  ballot,
  ballotEquals,
  compareBallots,
  formatBallot,
  isHigherBallot,
  MAX_ROUND,
  maxBallot,
  nextBallot,
  ZERO_BALLOT,
} from './ballot.js';
export {
  type ClientCodec,
  createClientCodec,
  detectFormat,
  type WireFormat,
} from './client-codec.js';
export {
  createPackr,
  createPeerCodec,
  type PeerCodec,
  packChecked,
  unpackStrict,
} from './codec.js';
export { DecodeError, type DecodeErrorCode, EncodeError, InvalidNameError } from './errors.js';
export { type CodecOptions, LIMITS } from './limits.js';
export {
  decodeMembership,
  decodeMembershipChange,
  encodeMembership,
  isMajorityOf,
  isMembershipValue,
  MAX_MEMBERS,
  MEMBERSHIP_WINDOW,
  Membership,
  type MembershipChange,
  type MembershipRecord,
  majorityImpossible,
  majorityOf,
  majorityUnreachable,
  normalizeMembers,
} from './membership.js';
export * from './messages.js';
export {
  assertGroupName,
  assertNodeId,
  isNameList,
  isValidName,
  MAX_NAME_LENGTH,
} from './names.js';
export type { StoreRecord, StoreRecordKind } from './records.js';
export { type GroupSubjects, groupSubjects, type NodeEndpoint } from './subjects.js';
/** Validates a decoded client write (an object), throwing DecodeError: for writes stored inside other values. */
export { toClientWrite as validateClientWrite } from './validate.js';
