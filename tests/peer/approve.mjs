#!/usr/bin/env node
// Approves (or denies) a device-flow user code on the test issuer, over plain
// HTTP with a cookie jar, the way a browser would:
//   GET /device -> submit the code form (xsrf + user_code) -> submit the
//   confirmation form -> follow redirects to /interaction/<uid> -> log in as
//   robot-user -> follow redirects -> consent (Allow, or Deny with --deny)
//   -> follow redirects to the final page.
//
//   node approve.mjs <issuer> <user_code> [--deny] [--user NAME] [--cacert PEM]
//
// Prints `approved` or `denied` on stdout and exits 0; exits 1 on anything
// unexpected (the page it got stuck on goes to stderr). For an https issuer
// the CA defaults to keys/tls-ca.pem.

import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));

function usage(msg) {
  if (msg) process.stderr.write(`approve: ${msg}\n`);
  process.stderr.write('usage: node approve.mjs <issuer> <user_code> [--deny] [--user NAME] [--cacert PEM]\n');
  process.exit(2);
}

const positional = [];
let deny = false;
let user = 'robot-user';
let cacert;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 1) {
  const a = argv[i];
  if (a === '--deny') deny = true;
  else if (a === '--user') { i += 1; user = argv[i]; }
  else if (a === '--cacert') { i += 1; cacert = argv[i]; }
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else positional.push(a);
}
if (positional.length !== 2) usage();
const [issuer, userCode] = positional;
const base = new URL(issuer);
let ca;
if (base.protocol === 'https:') ca = readFileSync(cacert ?? join(HERE, 'keys', 'tls-ca.pem'));

// -- cookie jar (name + path, RFC 6265 path matching, Max-Age/Expires) -------
const jar = new Map(); // `${path}\n${name}` -> { name, value, path, expires }

function storeCookies(url, setCookies) {
  for (const line of setCookies) {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    if (eq < 1) continue;
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
    let expires = Infinity;
    for (const attr of attrs) {
      const [k, ...rest] = attr.split('=');
      const v = rest.join('=');
      const key = k.toLowerCase();
      if (key === 'path' && v.startsWith('/')) path = v;
      else if (key === 'max-age') expires = Date.now() + Number(v) * 1000;
      else if (key === 'expires' && expires === Infinity) expires = Date.parse(v);
    }
    const id = `${path}\n${name}`;
    if (expires <= Date.now()) jar.delete(id);
    else jar.set(id, { name, value, path, expires });
  }
}

function cookieHeader(url) {
  const p = url.pathname;
  const matching = [...jar.values()].filter((c) => c.expires > Date.now()
    && (p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)))
    .sort((a, b) => b.path.length - a.path.length);
  return matching.map((c) => `${c.name}=${c.value}`).join('; ');
}

// -- HTTP ---------------------------------------------------------------------
function request(method, url, form) {
  const body = form ? new URLSearchParams(form).toString() : undefined;
  const headers = {
    accept: 'text/html,application/xhtml+xml',
    'user-agent': 'robot-token-test-approve/1',
  };
  const cookie = cookieHeader(url);
  if (cookie) headers.cookie = cookie;
  if (body !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = Buffer.byteLength(body);
  }
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers, ca }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        storeCookies(url, [].concat(res.headers['set-cookie'] ?? []));
        resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), url });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(15000, () => req.destroy(new Error(`timeout on ${method} ${url}`)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// Like a browser: follow 301/302/303 with GET (and 307/308 keeping the method).
async function navigate(method, url, form) {
  let res = await request(method, url, form);
  for (let hops = 0; [301, 302, 303, 307, 308].includes(res.status); hops += 1) {
    if (hops > 20) throw new Error('too many redirects');
    const next = new URL(res.headers.location, res.url);
    const keep = res.status === 307 || res.status === 308;
    res = await request(keep ? method : 'GET', next, keep ? form : undefined);
  }
  return res;
}

// -- HTML forms -------------------------------------------------------------
const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
  .replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  return m ? unescape(m[2] ?? m[3] ?? m[4]) : undefined;
};

function forms(html) {
  const out = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const fields = {};
    for (const input of m[2].matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(input[0], 'name');
      if (name) fields[name] = attr(input[0], 'value') ?? '';
    }
    out.push({
      id: attr(m[1], 'id'), action: attr(m[1], 'action'), method: (attr(m[1], 'method') ?? 'get').toUpperCase(), fields,
    });
  }
  return out;
}

function fail(msg, res) {
  process.stderr.write(`approve: ${msg}\n`);
  if (res) process.stderr.write(`--- ${res.status} ${res.url}\n${res.text}\n`);
  process.exit(1);
}

function submit(res, form, extra = {}) {
  return navigate(form.method, new URL(form.action ?? res.url, res.url), { ...form.fields, ...extra });
}

// -- the flow -----------------------------------------------------------------
let res = await navigate('GET', new URL('/device', base));
for (let step = 0; step < 10; step += 1) {
  if (res.status !== 200) fail(`unexpected HTTP ${res.status}`, res);
  const fs = forms(res.text);
  const byId = (id) => fs.find((f) => f.id === id);
  if (/id="success"/.test(res.text)) {
    if (deny) fail('approved although --deny was given', res);
    process.stdout.write('approved\n');
    process.exit(0);
  }
  if (/id="error"/.test(res.text) && /interrupted|access_denied/i.test(res.text) && deny) {
    process.stdout.write('denied\n');
    process.exit(0);
  }
  if (/id="error"/.test(res.text)) fail('the issuer shows an error', res);
  if (byId('op.deviceInputForm')) {
    res = await submit(res, byId('op.deviceInputForm'), { user_code: userCode });
  } else if (byId('op.deviceConfirmForm')) {
    res = await submit(res, byId('op.deviceConfirmForm'));
  } else if (byId('login')) {
    res = await submit(res, byId('login'), { username: user, password: `${user}-password` });
  } else if (byId('consent') && byId('deny')) {
    res = await submit(res, deny ? byId('deny') : byId('consent'));
  } else {
    fail('no known form on this page', res);
  }
}
fail('gave up after too many steps', res);
