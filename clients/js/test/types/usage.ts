// Compiled with tsc --noEmit by test/unit/types_test.js: the declarations
// describe the API as an application uses it.
import { Client, WsgwError, UnauthorizedError, CLOSE_POLICY, closeAction, backoff, type Positions, type Welcome } from 'wsgw-client';
import { SharedClient } from 'wsgw-client/shared';

declare const stored: string | null;

const since: Positions | undefined = stored ? (JSON.parse(stored) as Positions) : undefined;
const client = new Client('wss://gw.example/ws', {
  getToken: async ({ reason }) => (reason === 'expiring' ? 'fresh' : null),
  since,
  timeout: 5000,
});
client.connect();
const welcome: Welcome = await client.ready(5000);
const id: string = welcome.connId;
const off = client.on<{ title: string }>('NEWS', (data, msg) => {
  const t: string = data.title;
  const code: number = msg.code;
  void t, code;
});
off();
client.onEvent('disconnected', ({ code, reason }) => console.log(code, reason));
client.onEvent('reset', (r) => (r.recovered ? undefined : r.key));
client.onEvent('connecting', (c) => c.delay + c.attempt);
try {
  const echo = await client.request<{ text: string }>('ECHO', { text: 'hi' }, { timeout: 1000, signal: AbortSignal.timeout(2000) });
  echo.text.toUpperCase();
} catch (e) {
  if (e instanceof WsgwError && e.code === 'closed' && e.retryable) console.log(e.traceId, e.command);
  if (e instanceof WsgwError && typeof e.code === 'number') console.log(e.code + 1);
}
const p: Positions = client.positions();
const action: string = CLOSE_POLICY[4001] + closeAction(4004) + backoff(1, 500, 20000);
new UnauthorizedError('logged out');

const shared = new SharedClient('wss://gw.example/ws', { getToken: () => 'token' });
shared.connect();
shared.on('NEWS', (d) => d);
shared.onEvent('leader', ({ leader }) => leader === true);
await shared.request('ECHO', 1);
void id, p, action, shared.state;
