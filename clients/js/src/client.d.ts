// Types of the wsgw JavaScript client (src/client.js). The protocol is
// docs/PROTOCOL.md; the client's procedures are its "Client procedures".

/** What the client does when its socket closes with a code. */
export type CloseAction = 'stop' | 'backoff' | 'reconnect' | 'restart' | 'token' | 'token-once';

/** The close-code table of docs/PROTOCOL.md ("Client procedures"). */
export const CLOSE_POLICY: Readonly<Record<number, CloseAction>>;

/** The action for a close code; codes not in the table back off. */
export function closeAction(code: number): CloseAction;

/** Full-jitter delay in ms: uniform in [min, min + min(max, min * 2^attempt)], at most max. */
export function backoff(attempt: number, min: number, max: number, random?: () => number): number;

export type State = 'disconnected' | 'connecting' | 'connected';

/** Failures of the client itself; a reply's error carries the gateway's number. */
export type ClientErrorCode = 'timeout' | 'closed' | 'disconnected' | 'queue_full' | 'aborted';

export class WsgwError extends Error {
  name: 'WsgwError';
  /** The reply's non-zero code (docs/PROTOCOL.md §4), or a ClientErrorCode. */
  code: number | ClientErrorCode;
  traceId?: string;
  command?: string;
  /** The reply's data, when the gateway or service sent some with the error. */
  data?: unknown;
  /** Whether the request left the client (false: certainly not executed). */
  sent?: boolean;
  /** 'closed' and 'timeout': trying again may work (the caller decides). */
  retryable?: boolean;
}

/** Throw it from getToken (or return null) when the user has no session: the client stops. */
export class UnauthorizedError extends Error {
  name: 'UnauthorizedError';
  constructor(message?: string);
}

/** Why getToken is called. */
export type TokenReason = 'connect' | 'reconnect' | 'online' | 'expired' | 'invalid' | 'expiring';

/** A position of a push stream (docs/PROTOCOL.md, recovery). */
export interface Position {
  epoch: string;
  seq: number;
}
/** Keys are "user", "all" and "group:<name>". */
export type Positions = Record<string, Position>;

/** The data of WELCOME (docs/PROTOCOL.md §3). */
export interface Welcome {
  connId: string;
  userId: string;
  name?: string;
  gateway?: string;
  heartbeatIntervalMs?: number;
  idleTimeoutMs?: number;
  maxMessageBytes?: number;
  tokenExpiresAt?: number;
  recovery?: Position;
  [field: string]: unknown;
}

/** Every message from the gateway: a reply or a push. */
export interface Message<T = unknown> {
  command: string;
  traceId: string;
  data: T;
  code: number;
  message: string;
  pos?: Position & { key: string };
}

export interface RecoveryResult {
  key: string;
  recovered: boolean;
  reason?: string;
  replayed?: number;
  epoch?: string;
  seq?: number;
  code?: number;
}

export interface ClientEvents {
  state: { state: State; previous: State };
  /** A (re)connect is scheduled: why the last socket closed, and the wait. */
  connecting: { code: number; reason: string; attempt: number; delay: number };
  connected: Welcome;
  /** The client stopped for good: code 1000 for disconnect(), 0 when getToken said no. */
  disconnected: { code: number; reason: string };
  error: { error: unknown; where: string };
  recovered: RecoveryResult;
  /** Pushes of `key` may be missing ('*': any key): reload that state. */
  reset: RecoveryResult;
  /** A refreshed token was accepted (the AUTH reply's data). */
  auth: { tokenExpiresAt: number | null };
}

/** Timers and time, replaceable for tests. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ClientOptions {
  /** Called before every connection attempt and on TOKEN_EXPIRING. null or UnauthorizedError: stop. */
  getToken?: (ctx: { reason: TokenReason }) => string | null | Promise<string | null>;
  /** The WebSocket constructor; default globalThis.WebSocket. */
  WebSocket?: unknown;
  /** 'subprotocol' (default; falls back to the query for tokens a subprotocol cannot carry) or 'query'. */
  tokenVia?: 'subprotocol' | 'query';
  /** Offered subprotocol the gateway selects; default 'wsgw'. */
  subprotocol?: string;
  /** Backoff floor and cap in ms; default 500 and 20000. */
  minReconnectDelay?: number;
  maxReconnectDelay?: number;
  /** A connection up this long (ms) resets the backoff; default 10000. */
  stableAfter?: number;
  /** Default request timeout (ms), waiting for a connection included; default 10000. */
  timeout?: number;
  /** From opening a socket to WELCOME (ms); default 10000. */
  connectTimeout?: number;
  /** Requests that may wait for a connection; default 100. */
  queueLimit?: number;
  /** Silence tolerated past WELCOME's heartbeatIntervalMs before HEALTH, and for its answer (ms); default 10000. */
  livenessMargin?: number;
  /** After 1012 on a stable connection, reconnect within a random [0, restartSpread] ms; default 2000. */
  restartSpread?: number;
  /** Positions to resume from (what positions() returned before a reload). */
  since?: Positions;
  /** Where online/offline/visibilitychange/pageshow/focus come from; default globalThis when it has addEventListener; null: none. */
  networkEvents?: EventTarget | null;
  random?: () => number;
  clock?: Clock;
}

export interface RequestOptions {
  /** ms until the request fails with 'timeout', waiting for a connection included. */
  timeout?: number;
  signal?: AbortSignal;
  /** false: fail at once with 'disconnected' instead of waiting for a connection. */
  queue?: boolean;
}

export class Client {
  /** url: the gateway's ws(s) URL, or a function returning one per attempt. */
  constructor(url: string | URL | (() => string | URL), options?: ClientOptions);
  readonly state: State;
  /** The current connection's WELCOME data (null before the first). */
  readonly welcome: Welcome | null;
  connect(): this;
  disconnect(): void;
  /** Resolves with WELCOME once connected; rejects on timeout (ms) or when the client stops. */
  ready(timeout?: number): Promise<Welcome>;
  /** Resolves with the reply's data on code 0; rejects with a WsgwError otherwise. */
  request<T = unknown>(command: string, data?: unknown, options?: RequestOptions): Promise<T>;
  /** Handles pushes of one command ('*': every push); returns the function that removes the handler. */
  on<T = unknown>(command: string, handler: (data: T, message: Message<T>) => void): () => void;
  /** Handles a client event; returns the function that removes the handler. */
  onEvent<E extends keyof ClientEvents>(event: E, handler: (arg: ClientEvents[E]) => void): () => void;
  /** The last delivered position per key; pass it as `since` after a reload. */
  positions(): Positions;
}
