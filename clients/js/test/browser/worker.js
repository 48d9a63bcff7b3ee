// A module Web Worker that uses the client (test/browser/flows_test.js):
// connects as the user it is told, answers with WELCOME, an ECHO and the
// first NEWS push.
import { Client } from '/src/client.js';

onmessage = async ({ data: { user } }) => {
  try {
    const config = await (await fetch('/config.json')).json();
    const c = new Client(config.gateway, {
      getToken: async () => (await (await fetch(`/token?user=${user}`)).json()).token,
    });
    const news = new Promise((r) => c.on('NEWS', r));
    c.connect();
    const welcome = await c.ready(10000);
    postMessage({ welcome, echo: await c.request('ECHO', { from: 'worker' }) });
    postMessage({ news: await news, state: c.state });
    c.disconnect();
  } catch (e) {
    postMessage({ error: String(e && e.message) });
  }
};
