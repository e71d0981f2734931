export type { SafetyClass } from './commands.js';
export {
  classifyBatch,
  classifyCommand,
  commandName,
  knownCommandNames,
  stricterClass,
} from './commands.js';
export type { MemberFailureReason } from './errors.js';
export { MemberRequestError } from './errors.js';
export type { RestMember, RestTransportOptions } from './rest.js';
export { classifyFetchError, createRestTransport, decodeResult } from './rest.js';
export type {
  AttemptOutcome,
  AttemptOutcomeKind,
  MemberRequest,
  MemberTransport,
  RestReply,
  SendOptions,
} from './types.js';
export { NOT_SENT_HEADER } from './types.js';
