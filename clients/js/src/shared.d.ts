// Types of the shared-connection mode (src/shared.js): one WebSocket for all
// the tabs of an origin, held by a leader tab elected with a Web Lock.
import type { ClientEvents, ClientOptions, Message, Positions, RequestOptions, State, Welcome } from './client.js';

export interface SharedClientOptions extends ClientOptions {
  /** Tabs with the same channel share a connection; default: the URL. */
  channel?: string;
}

export interface SharedClientEvents extends ClientEvents {
  /** This tab took the connection (true). */
  leader: { leader: boolean };
}

export class SharedClient {
  /** The URL must be a string or URL here: every tab builds the connection from it. */
  constructor(url: string | URL, options?: SharedClientOptions);
  readonly state: State;
  readonly welcome: Welcome | null;
  /** Whether this tab holds the connection. */
  readonly leader: boolean;
  /** Joins the tabs of this origin (and connects the shared connection). */
  connect(): this;
  /** Leaves; a leader hands the connection to the next tab. */
  disconnect(): void;
  ready(timeout?: number): Promise<Welcome>;
  request<T = unknown>(command: string, data?: unknown, options?: Omit<RequestOptions, 'queue'>): Promise<T>;
  on<T = unknown>(command: string, handler: (data: T, message: Message<T>) => void): () => void;
  onEvent<E extends keyof SharedClientEvents>(event: E, handler: (arg: SharedClientEvents[E]) => void): () => void;
  positions(): Positions;
}
