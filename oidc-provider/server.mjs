// A real OpenID provider (panva's certified node-oidc-provider) for aifactory's tests and for
// trying federated sign-in by hand. It is a development tool: plain HTTP on loopback, in-memory
// storage (a restart forgets sessions, grants and tokens), accounts with passwords in a JSON file.
//
//   node server.mjs CONFIG.json        (or OIDC_CONFIG=CONFIG.json node server.mjs)
//
// The configuration (see README.md for every key): port, accounts, clients, keys, ttl. When it
// listens it prints one line, "ready <issuer>", to stdout; errors go to stderr.
//
// Sign-in is this file's own minimal interaction: a login form (username = an account's id or
// e-mail, password) checked against the configured accounts, then consent given automatically
// for the requested scopes. The device flow's pages (user code, confirmation) are the provider's.

import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider, { errors } from 'oidc-provider';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`Node.js ${process.versions.node} is too old: oidc-provider needs 20.19 or later`);
  process.exit(1);
}

const configPath = process.argv[2] || process.env.OIDC_CONFIG;
if (!configPath) {
  console.error('usage: node server.mjs CONFIG.json (or set OIDC_CONFIG)');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const configDir = path.dirname(path.resolve(configPath));

const host = config.host || '127.0.0.1';
const port = Number(config.port || 9000);
const issuer = (config.issuer || `http://${host}:${port}`).replace(/\/$/, '');

// Signing keys: a JWKS inline ({"keys": [...]}) or the path of a JWKS file, relative to the
// configuration file (or else to this directory).
function loadJwks(keys) {
  if (keys === undefined) keys = 'keys.json';
  if (typeof keys === 'object') return keys;
  for (const base of [configDir, HERE]) {
    try {
      return JSON.parse(readFileSync(path.resolve(base, keys), 'utf8'));
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  }
  throw new Error(`keys file not found: ${keys}`);
}
const jwks = loadJwks(config.keys);

// Accounts: {id, password, claims}; the subject is claims.sub, or else the id.
const accounts = (config.accounts || []).map((account) => ({
  ...account,
  sub: String((account.claims && account.claims.sub) || account.id),
}));
// Found by subject (our own login) or by id (the provider's devInteractions login, if enabled).
const accountBySub = new Map([...accounts.map((a) => [a.id, a]), ...accounts.map((a) => [a.sub, a])]);

function findLoginAccount(username, password) {
  const name = String(username || '').trim().toLowerCase();
  const account = accounts.find(
    (a) => a.id.toLowerCase() === name || String(a.claims?.email || '').toLowerCase() === name,
  );
  return account && account.password === password ? account : undefined;
}

// Clients: oidc-provider client metadata, plus two keys of ours: id_token_ttl and
// access_token_ttl (seconds, for this client only). With "registration_token" in the
// configuration, more clients can be registered while it runs (POST /reg, that token as Bearer).
const CLIENT_EXTRAS = ['id_token_ttl', 'access_token_ttl'];
const clients = config.clients || [];

// Claims released per scope. Custom scopes for research and education federations.
const scopeClaims = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username'],
  email: ['email', 'email_verified'],
  schac_home_organization: ['schac_home_organization'],
  entitlements: ['eduperson_entitlement', 'eduperson_affiliation'],
  eduperson_entitlement: ['eduperson_entitlement'],
  eduperson_affiliation: ['eduperson_affiliation'],
  ...(config.scope_claims || {}),
};

// Lifetimes in seconds; any of oidc-provider's ttl keys may be given.
const ttl = {
  IdToken: 3600,
  AccessToken: 3600,
  AuthorizationCode: 60,
  DeviceCode: 600,
  RefreshToken: 14 * 24 * 3600,
  Interaction: 3600,
  Session: 14 * 24 * 3600,
  Grant: 14 * 24 * 3600,
  ...(config.ttl || {}),
};

function perClient(key, fallback) {
  return (ctx, token, client) => {
    const own = client && client.metadata()[key];
    return own !== undefined && own !== null ? own : fallback;
  };
}

const escape = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
})[c]);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:26em;margin:3em auto;padding:0 1em}
input{display:block;width:100%;margin:.3em 0 1em;padding:.4em;box-sizing:border-box}
button{padding:.5em 1.5em}.error{color:#b00020}small{color:#666}</style></head>
<body><h1>${escape(title)}</h1>
${body}
<p><small>aifactory test OpenID provider (${escape(issuer)})</small></p>
</body></html>`;
}

const configuration = {
  clients,
  jwks,
  findAccount: async (ctx, sub) => {
    const account = accountBySub.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { ...account.claims, sub };
      },
    };
  },
  extraClientMetadata: {
    properties: CLIENT_EXTRAS,
    validator(ctx, key, value) {
      if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
        throw new errors.InvalidClientMetadata(`${key} must be a positive integer (seconds)`);
      }
    },
  },
  claims: scopeClaims,
  scopes: ['openid', 'offline_access', ...Object.keys(scopeClaims).filter((s) => s !== 'openid')],
  // The custom claims go into the ID token too, so a relying party can read them there.
  conformIdTokenClaims: false,
  cookies: { keys: config.cookie_keys || ['aifactory-test-oidc-provider-cookie-key'] },
  pkce: { required: () => config.pkce_required !== false },
  ttl: {
    ...ttl,
    IdToken: perClient('id_token_ttl', ttl.IdToken),
    AccessToken: perClient('access_token_ttl', ttl.AccessToken),
  },
  // Every client allowed the refresh_token grant gets refresh tokens, offline_access or not.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: {
    devInteractions: { enabled: Boolean(config.dev_interactions) },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: async (ctx, form, out, err) => {
        let msg = '<p>Enter the code displayed on your device.</p>';
        if (err && (err.userCode || err.name === 'NoCodeError')) {
          msg = '<p class="error">The code you entered is incorrect. Try again.</p>';
        } else if (err && err.name === 'AbortedError') {
          msg = '<p class="error">The sign-in request was interrupted.</p>';
        } else if (err) {
          msg = '<p class="error">There was an error processing your request.</p>';
        }
        ctx.body = page('Device sign-in', `${msg}
${form.replace('</form>', '<button type="submit">Continue</button></form>')}`);
      },
      userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => {
        const name = escape(client.clientName || client.clientId);
        ctx.body = page('Confirm device', `<p><strong>${name}</strong> asks to sign in.
The following code should be displayed on your device:</p><p><code>${escape(userCode)}</code></p>
${form.replace('</form>', '<button type="submit">Continue</button></form>')}
${form.replace('op.deviceConfirmForm', 'op.deviceAbortForm')
    .replace('</form>', '<input type="hidden" name="abort" value="yes"/><button type="submit">Abort</button></form>')}`);
      },
      successSource: async (ctx) => {
        const name = escape(ctx.oidc.client.clientName || ctx.oidc.client.clientId);
        ctx.body = page('Sign-in success', `<p>Your sign-in with ${name} was successful; you can close this page.</p>`);
      },
    },
    registration: {
      enabled: Boolean(config.registration_token),
      initialAccessToken: config.registration_token || false,
      // For the tests: a registered client keeps the client_id and client_secret it asks for.
      idFactory: (ctx) => ctx.oidc.body.client_id || crypto.randomUUID(),
      secretFactory: async (ctx) => ctx.oidc.body.client_secret || crypto.randomUUID(),
    },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page('Sign out', `<p>Do you want to sign out from ${escape(ctx.host)}?</p>
${form.replace('</form>', '<button type="submit" name="logout" value="yes" autofocus>Yes, sign me out</button></form>')}`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page('Signed out', '<p>You have been signed out.</p>');
      },
    },
  },
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    const rows = Object.entries(out)
      .map(([k, v]) => `<p><strong>${escape(k)}</strong>: ${escape(v)}</p>`).join('\n');
    ctx.body = page('Sign-in error', rows);
  },
};

const provider = new Provider(issuer, configuration);

for (const event of ['server_error', 'authorization.error', 'grant.error', 'end_session.error',
  'userinfo.error', 'introspection.error', 'revocation.error', 'device_authorization.error',
  'backchannel.error', 'jwks.error', 'discovery.error', 'check_session.error']) {
  provider.on(event, (ctx, err) => {
    const detail = err && err.error_description ? ` (${err.error_description})` : '';
    console.error(`${event}: ${err && (err.stack || err.message || err)}${detail}`);
  });
}

// ---- the interaction (login, then automatic consent) ----

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(html);
}

function loginPage(uid, details, clientName, error, username) {
  return page('Sign in', `<p>Sign in to continue to <strong>${escape(clientName)}</strong>.</p>
${error ? `<p class="error">${escape(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<label for="username">Username</label>
<input id="username" name="username" type="text" value="${escape(username || details.params.login_hint || '')}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button type="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${escape(uid)}/abort">
<button type="submit">Cancel</button>
</form>`);
}

async function consent(req, res, details) {
  const { prompt: { details: missing }, params, session: { accountId } } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  const result = { consent: details.grantId ? {} : { grantId } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, page('Sign-in error', '<p>This sign-in page has expired; start again.</p>'));
    return;
  }
  const prompt = details.prompt.name;
  const client = await provider.Client.find(String(details.params.client_id));
  const clientName = (client && client.clientName) || details.params.client_id;
  if (req.method === 'GET' && !action) {
    if (prompt === 'login') {
      send(res, 200, loginPage(uid, details, clientName));
    } else if (prompt === 'consent') {
      await consent(req, res, details);
    } else {
      send(res, 400, page('Sign-in error', `<p>Unsupported prompt: ${escape(prompt)}</p>`));
    }
    return;
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const account = findLoginAccount(form.get('username'), form.get('password'));
    if (!account) {
      send(res, 401, loginPage(uid, details, clientName, 'Unknown user or wrong password.', form.get('username')));
      return;
    }
    await provider.interactionFinished(req, res, {
      login: { accountId: account.sub, remember: false },
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (req.method === 'POST' && action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    return;
  }
  send(res, 405, page('Sign-in error', '<p>Method not allowed.</p>'));
}

const handle = provider.callback();
const server = http.createServer((req, res) => {
  const { pathname } = new URL(req.url, issuer);
  const match = /^\/interaction\/([^/]+)(?:\/(login|abort))?$/.exec(pathname);
  if (match && !config.dev_interactions) {
    interaction(req, res, match[1], match[2]).catch((err) => {
      console.error(`interaction error: ${err.stack || err}`);
      if (!res.headersSent) {
        send(res, 400, page('Sign-in error', `<p>${escape(err.error_description || err.message)}</p>`));
      } else {
        res.end();
      }
    });
    return;
  }
  handle(req, res);
});

server.on('error', (err) => {
  console.error(`cannot listen on ${host}:${port}: ${err.message}`);
  process.exit(1);
});
server.listen(port, host, () => {
  console.log(`ready ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
