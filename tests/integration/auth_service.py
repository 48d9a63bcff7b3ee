"""A test auth service for wsgw (docs/PROTOCOL.md §6.6) on a real NATS
connection (nats_helpers.NatsClient).

The gateway sends
    {"kind":"handshake|refresh|revalidate","gateway":"gw1",
     "items":[{"id","token","user","conn","remote"}, ...]}
and expects
    {"results":[{"id","valid","user","reason","expiresAt","ttlMs","tokenId","issuedAt"}, ...]}

This service answers each item from a mutable table token -> answer:

    svc = AuthService(nats.url, "svc.auth")
    svc.set("tok-a", valid=True, user={"id": "alice", "name": "Alice"}, expiresAt=...)
    svc.set("tok-x", valid=False, reason="account disabled")
    svc.update("tok-a", user={"id": "alice", "name": "Alice B."})
    svc.set("tok-y", AuthService.OMIT)     # no result for that item
    svc.set("tok-z", lambda item, request: {...})   # computed per item

A token not in the table gets `default` (an answer dict, a callable(item,
request) or OMIT); by default `{"valid": false, "reason": "unknown token"}`.

Behaviour switches:
    svc.go_silent()     requests are received (and recorded) but not answered:
                        the gateway runs into auth.service.timeout_ms
    svc.go_silent(False)
    svc.stop()          unsubscribes: nobody listens, the gateway gets
                        "no responders" at once
    svc.restart()       subscribes again
    svc.reverse_results = True
                        results in the reverse order of the items (the
                        gateway must match them by id)
    svc.close()         closes the NATS connection (Resources calls this)

What it saw (all guarded by one lock; copies are returned):
    svc.requests()                  every request as a Request (payload,
                                    time received, answered or not, results)
    svc.count_requests(kind=None), svc.count_items(kind=None),
    svc.kinds()                     Counter kind -> requests
    svc.max_batch(kind=None)        the largest items list seen
    svc.wait_request(pred, timeout) first Request (after index `start`) with
                                    pred(request), or None (bounded)
    svc.wait_item(pred, timeout)    first (Request, item) with pred(request, item)

Set record_payloads=False (load measurement) to keep only the counters and
(time, kind, items) per request.
"""

import base64
import collections
import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.parse

from nats_helpers import IO_TIMEOUT, NatsClient


class Request:
    """One request the service received."""

    __slots__ = ("t", "kind", "gateway", "items", "n_items", "payload", "reply", "answered",
                 "results", "t_answered")

    def __init__(self, t, kind, gateway, items, payload, reply):
        self.t = t                  # time.monotonic() when it arrived
        self.kind = kind
        self.gateway = gateway
        self.items = items          # list of item dicts (or [] without payloads)
        self.n_items = len(items)
        self.payload = payload      # the parsed JSON payload (None when not recorded)
        self.reply = reply
        self.answered = False
        self.results = None         # the results list sent, when answered
        self.t_answered = None

    def item_for(self, pred):
        for it in self.items:
            if pred(it):
                return it
        return None

    def __repr__(self):
        return "Request(%s, gateway=%s, items=%r, answered=%s, results=%r)" % (
            self.kind, self.gateway, self.items, self.answered, self.results)


class AuthService:
    OMIT = object()  # answer marker: no result for that item

    DEFAULT_ANSWER = {"valid": False, "reason": "unknown token"}

    def __init__(self, url, subject, name="wsgw-it-auth", default=None, record_payloads=True,
                 queue_group=None):
        self.url = url
        self.subject = subject
        self.record_payloads = record_payloads
        self.queue_group = queue_group
        self.default = dict(self.DEFAULT_ANSWER) if default is None else default
        self._lock = threading.Condition()
        self._table = {}
        self._silent = False
        self.reverse_results = False  # answer in the reverse order of the items
        self._requests = []
        self._kinds = collections.Counter()
        self._items = collections.Counter()
        self._max_batch = collections.Counter()
        self.bad_payloads = []  # payloads that were not a request (raw bytes)
        self.client = NatsClient(url, name=name)
        self._sub = None
        self.restart()

    # Table --------------------------------------------------------------------
    def set(self, token, answer=None, **fields):
        """Sets the answer for `token`: a dict, a callable(item, request),
        OMIT, or the keyword fields (valid=..., user=..., ...)."""
        if answer is None:
            answer = dict(fields)
        elif fields:
            raise ValueError("give either an answer or fields")
        with self._lock:
            self._table[token] = answer

    def update(self, token, **fields):
        """Changes some fields of a dict answer; a field set to None is removed."""
        with self._lock:
            cur = self._table.get(token)
            if not isinstance(cur, dict):
                raise KeyError("no dict answer for token %r" % token)
            new = dict(cur)
            for k, v in fields.items():
                if v is None:
                    new.pop(k, None)
                else:
                    new[k] = v
            self._table[token] = new

    def remove(self, token):
        with self._lock:
            self._table.pop(token, None)

    def answer_for(self, token):
        with self._lock:
            return self._table.get(token, self.default)

    # Switches -----------------------------------------------------------------
    def go_silent(self, silent=True):
        with self._lock:
            self._silent = silent

    @property
    def silent(self):
        with self._lock:
            return self._silent

    def stop(self):
        """Unsubscribes (confirmed with a PING/PONG): from now on nobody
        listens on the subject and the gateway's requests fail with no
        responders."""
        with self._lock:
            sub, self._sub = self._sub, None
        if sub is not None:
            sub.unsubscribe()
            if not self.client.flush():
                raise RuntimeError("auth service unsubscribe from %s not confirmed" % self.subject)

    def restart(self):
        """Subscribes (again); returns once the server has the subscription."""
        with self._lock:
            if self._sub is not None:
                return
        sub = self.client.sub(self.subject, callback=self._on_msg, queue_group=self.queue_group)
        with self._lock:
            self._sub = sub
        if not self.client.flush():
            raise RuntimeError("auth service subscription to %s not confirmed" % self.subject)

    @property
    def running(self):
        with self._lock:
            return self._sub is not None

    def close(self):
        self.client.close()

    # Answering ----------------------------------------------------------------
    def _on_msg(self, msg):
        now = time.monotonic()
        try:
            payload = json.loads(msg.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
            with self._lock:
                self.bad_payloads.append(msg.payload)
                self._lock.notify_all()
            return
        items = [it for it in payload["items"] if isinstance(it, dict)]
        kind = payload.get("kind")
        req = Request(now, kind, payload.get("gateway"), items, payload, msg.reply)
        with self._lock:
            if self._sub is None or msg.sid != self._sub.sid:
                return  # arrived for a subscription already dropped
            silent = self._silent
            table = dict(self._table)
            default = self.default
            results = []
            if not silent:
                for it in items:
                    answer = table.get(it.get("token"), default)
                    if callable(answer):
                        answer = answer(it, payload)
                    if answer is self.OMIT or answer is None:
                        continue
                    r = {"id": it.get("id")}
                    r.update({k: v for k, v in answer.items() if v is not None})
                    results.append(r)
                if self.reverse_results:
                    results.reverse()
            if not silent and msg.reply:
                req.answered = True
                req.results = results
                req.t_answered = time.monotonic()
            if not self.record_payloads:
                req.items, req.payload = [], None
            self._requests.append(req)
            self._kinds[kind] += 1
            self._items[kind] += len(items)
            self._max_batch[kind] = max(self._max_batch[kind], len(items))
            self._lock.notify_all()
        if req.answered:
            self.client.pub(msg.reply, {"results": results})

    # What it saw ----------------------------------------------------------------
    def requests(self, kind=None, start=0):
        with self._lock:
            return [r for r in self._requests[start:] if kind is None or r.kind == kind]

    def request_count(self):
        """Index for `start=` of later waits."""
        with self._lock:
            return len(self._requests)

    def count_requests(self, kind=None):
        with self._lock:
            return sum(self._kinds.values()) if kind is None else self._kinds[kind]

    def count_items(self, kind=None):
        with self._lock:
            return sum(self._items.values()) if kind is None else self._items[kind]

    def kinds(self):
        with self._lock:
            return collections.Counter(self._kinds)

    def max_batch(self, kind=None):
        with self._lock:
            if kind is not None:
                return self._max_batch[kind]
            return max(self._max_batch.values(), default=0)

    def timeline(self):
        """[(t, kind, number of items)] of every request, for rates."""
        with self._lock:
            return [(r.t, r.kind, r.n_items) for r in self._requests]

    def wait_request(self, pred=lambda r: True, timeout=IO_TIMEOUT, start=0, limit=100000):
        """The first request from index `start` on with pred(request), or None
        after timeout."""
        deadline = time.monotonic() + timeout
        seen = start
        with self._lock:
            for _ in range(limit):
                for r in self._requests[seen:]:
                    if pred(r):
                        return r
                seen = max(seen, len(self._requests))
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(left)
        return None

    def wait_item(self, pred, timeout=IO_TIMEOUT, start=0, answered=True):
        """(request, item) of the first item with pred(request, item), from
        request index `start` on; with answered=True only requests the
        service answered count. None after timeout."""
        found = []

        def match(r):
            if answered and not r.answered:
                return False
            for it in r.items:
                if pred(r, it):
                    found.append(it)
                    return True
            return False

        r = self.wait_request(match, timeout, start)
        return (r, found[-1]) if r is not None else None


class CountingAuthService(AuthService):
    """For load measurement: answers every item valid with the item's own
    user (so a combined-mode gateway keeps the connection), and keeps only
    (time, kind, items) per request."""

    def __init__(self, url, subject, name="wsgw-bench-auth", ttl_ms=None):
        def valid_for_its_user(item, request):
            ans = {"valid": True, "user": {"id": item.get("user") or "unknown"}}
            if ttl_ms is not None:
                ans["ttlMs"] = ttl_ms
            return ans

        self._light = []
        super().__init__(url, subject, name=name, default=valid_for_its_user,
                         record_payloads=True)

    def _on_msg(self, msg):
        # Lean path: count, answer, keep (t, kind, n). No payload kept.
        now = time.monotonic()
        try:
            payload = json.loads(msg.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
            with self._lock:
                self.bad_payloads.append(msg.payload)
            return
        items = payload["items"]
        kind = payload.get("kind")
        with self._lock:
            silent = self._silent
            self._light.append((now, kind, len(items)))
            self._kinds[kind] += 1
            self._items[kind] += len(items)
            self._max_batch[kind] = max(self._max_batch[kind], len(items))
        if silent or not msg.reply:
            return
        results = []
        for it in items:
            if not isinstance(it, dict):
                continue
            r = {"id": it.get("id")}
            r.update(self.default(it, payload))
            results.append(r)
        self.client.pub(msg.reply, {"results": results})

    def timeline(self):
        with self._lock:
            return list(self._light)


# --------------------------------------------------------------------------
# Tokens and raw handshakes (helpers shared by the tests and tools/bench)

def _b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def mint_jwt(secret, sub, exp=None, iat=None, jti=None, name=None, ttl_s=3600, **claims):
    """An HS256 JWT: sub, exp (default iat + ttl_s), iat (default now; False:
    none), optional jti and name, plus any other claims."""
    now = int(time.time())
    body = {"sub": sub}
    if iat is not False:
        body["iat"] = now if iat is None else iat
    body["exp"] = (now + ttl_s) if exp is None else exp
    if jti is not None:
        body["jti"] = jti
    if name is not None:
        body["name"] = name
    body.update(claims)
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode())
                             for part in (header, body))
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64url(sig)


class HandshakeResult:
    def __init__(self, status, reason, headers, body, local_port):
        self.status = status
        self.reason = reason
        self.headers = headers      # lowercased name -> value
        self.body = body            # bytes
        self.local_port = local_port

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError:
            return None

    def __repr__(self):
        return "HandshakeResult(%s %s, %r, %r)" % (self.status, self.reason, self.headers,
                                                  self.body[:300])


def raw_handshake(host, port, path="/ws", token=None, headers=(), timeout=IO_TIMEOUT):
    """Sends one WebSocket upgrade request on a plain socket and reads the
    answer's status line, headers and (for a refusal) its body. A 101 is
    closed right away. Bounded by `timeout` overall."""
    target = path + ("?token=" + urllib.parse.quote(token, safe="") if token is not None else "")
    lines = ["GET %s HTTP/1.1" % target, "Host: %s:%d" % (host, port), "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13"]
    lines += ["%s: %s" % h for h in headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        local_port = sock.getsockname()[1]
        sock.sendall(request)
        buf = b""
        for _ in range(10000):
            if b"\r\n\r\n" in buf:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete answer header within %.1f s: %r" % (timeout, buf))
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        head_lines = head.decode("latin-1").split("\r\n")
        if not head_lines or not head_lines[0].startswith("HTTP/1.1 "):
            raise AssertionError("not an HTTP answer: %r" % buf[:300])
        parts = head_lines[0].split(" ", 2)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        hdrs = {}
        for line in head_lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if status != 101:
            want = int(hdrs.get("content-length", "-1"))
            for _ in range(10000):
                if want >= 0 and len(body) >= want:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
            if want >= 0:
                body = body[:want]
        return HandshakeResult(status, reason, hdrs, body, local_port)
    finally:
        sock.close()
