#!/usr/bin/env node
// The demo page's tiny static server (the gateway never serves files), also
// used by the browser tests. It serves clients/js (the client's source, the
// demo page, the test pages) and GET /token?user=U&ttl=S, which mints an HS256
// token.
//
// DEVELOPMENT ONLY: /token gives anyone a token for any user. It signs with
// config/dev.secret through `build/wsgw token --config config/wsgw.toml`, the
// development key tools/run generates. Never run it next to a real key.
//
//   node clients/js/demo/serve.mjs [--port 8000] [--gateway ws://127.0.0.1:8080/ws]
// after tools/run; then open http://127.0.0.1:8000/demo/
import { createServer } from 'node:http';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.ts': 'text/plain; charset=utf-8',
};
const USER = /^[A-Za-z0-9_.@-]{1,64}$/;

// Serves `root` on host:port (0: any free port). `mint(user, ttl)` resolves
// with a token. `config` is served as /config.json. Resolves with the server
// once it listens (server.address().port is the port).
export function staticServer({ root, mint, config = {}, host = '127.0.0.1', port = 0 }) {
  const base = resolve(root);
  const server = createServer(async (req, res) => {
    const send = (status, body, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    try {
      const url = new URL(req.url, 'http://x');
      if (req.method !== 'GET') return send(405, 'GET only');
      if (url.pathname === '/config.json') return send(200, JSON.stringify(config), TYPES['.json']);
      if (url.pathname === '/token') {
        const user = url.searchParams.get('user') || '';
        const ttl = Number(url.searchParams.get('ttl') || 3600);
        if (!USER.test(user) || !Number.isInteger(ttl) || ttl < 1 || ttl > 86400) return send(400, 'want user=[A-Za-z0-9_.@-]{1,64} and ttl=1..86400');
        return send(200, JSON.stringify({ token: await mint(user, ttl) }), TYPES['.json']);
      }
      let path = normalize(join(base, decodeURIComponent(url.pathname)));
      if (path !== base && !path.startsWith(base + sep)) return send(403, 'outside the root');
      if ((await stat(path).catch(() => null))?.isDirectory()) path = join(path, 'index.html');
      const body = await readFile(path).catch(() => null);
      if (!body) return send(404, 'not found');
      send(200, body, TYPES[extname(path)] || 'application/octet-stream');
    } catch (e) {
      send(500, String(e && e.message));
    }
  });
  return new Promise((ok, no) => server.once('error', no).listen(port, host, () => ok(server)));
}

// A mint function that runs `wsgw token` with the given arguments.
export const wsgwMint = (binary, args, cwd) => (user, ttl) =>
  new Promise((ok, no) =>
    execFile(binary, ['token', ...args, '--user', user, '--name', user, '--ttl', String(ttl)], { cwd, timeout: 10000 }, (err, out, errOut) =>
      err ? no(new Error(`wsgw token failed: ${errOut || err.message}`)) : ok(out.trim())
    )
  );

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const repo = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
  const binary = join(repo, 'build/wsgw');
  const gateway = opt('--gateway', 'ws://127.0.0.1:8080/ws');
  const server = await staticServer({
    root: join(repo, 'clients/js'),
    mint: wsgwMint(binary, ['--config', 'config/wsgw.toml'], repo),
    config: { gateway },
    port: Number(opt('--port', 8000)),
  });
  const { port } = server.address();
  console.log(`wsgw demo (development only: /token mints tokens for anyone with config/dev.secret)`);
  console.log(`  gateway  ${gateway}`);
  console.log(`  open     http://127.0.0.1:${port}/demo/`);
}
