// oidc-provider as the enterprise IdP of Enterprise-Managed Authorization: an RFC 8693
// token-exchange grant that trades an ID token this provider issued for an Identity Assertion
// JWT Authorization Grant (ID-JAG), which the client then presents to the MCP server's
// authorization server with the RFC 7523 jwt-bearer grant (the gateway's facade).
//
// Request (client authenticated as at any token request):
//   grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//   requested_token_type=urn:ietf:params:oauth:token-type:id-jag
//   subject_token=<ID token>  subject_token_type=urn:ietf:params:oauth:token-type:id_token
//   audience=<the authorization server's issuer>  resource=<the MCP server>  [scope=...]
// Answer: { access_token: <ID-JAG>, issued_token_type: ...:id-jag, token_type: "N_A",
//           expires_in, scope }
//
// The subject token must be an ID token of this provider (its own key, `iss`, `exp`) issued
// to the requesting client (`aud`). The ID-JAG is signed with the provider's signing key (the
// one its JWKS publishes), header `typ: oauth-id-jag+jwt`, claims iss, sub (the ID token's),
// aud (the audience), client_id (the client's id AT that authorization server), resource,
// scope, jti, iat, exp.
//
// The policy (config.id_jag) is what an IdP administrator configures: which client may get
// ID-JAGs for which authorization server, what that client is called there, and for which
// resources and scopes:
//   { "ttl": 300,
//     "grants": { "<IdP client id>": { "<audience>": { "client_id": "<id at the audience>",
//                                                      "resources": { "<url>": "s1 s2" } } } } }
// Anything outside it is refused (invalid_target / invalid_scope), as a real IdP's policy would.

import * as crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
const ID_JAG_TYP = 'oauth-id-jag+jwt';

export default async function extend(provider, { issuer, config, errors, toolChain, signingKey }) {
  const jose = await import(pathToFileURL(toolChain.resolve('jose')).href);
  const policy = config.id_jag ?? {};
  const grants = policy.grants ?? {};
  const ttl = policy.ttl ?? 300;
  const privateKey = crypto.createPrivateKey({ key: signingKey, format: 'jwk' });
  const publicKey = crypto.createPublicKey(privateKey);

  async function idTokenOf(token, clientId) {
    try {
      // The provider's own key; jose checks exp (and nbf) itself.
      const { payload } = await jose.jwtVerify(token, publicKey, {
        issuer,
        audience: clientId,
        algorithms: [signingKey.alg],
      });
      return payload;
    } catch {
      throw new errors.InvalidGrant('subject token is not an ID token issued to this client');
    }
  }

  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx) => {
      const { params, client } = ctx.oidc;
      if (params.requested_token_type !== ID_JAG) {
        throw new errors.InvalidRequest('requested_token_type must be an ID-JAG');
      }
      if (params.subject_token_type !== ID_TOKEN) {
        throw new errors.InvalidRequest('subject_token_type must be an ID token');
      }
      if (!params.audience || !params.resource) {
        throw new errors.InvalidRequest('audience and resource are required');
      }
      const idToken = await idTokenOf(params.subject_token, client.clientId);
      const allowed = grants[client.clientId]?.[params.audience];
      if (allowed === undefined) {
        throw new errors.InvalidTarget('this client may not get ID-JAGs for that audience');
      }
      const known = allowed.resources?.[params.resource];
      if (known === undefined) {
        throw new errors.InvalidTarget('this client may not get ID-JAGs for that resource');
      }
      const offered = String(known).split(' ').filter(Boolean);
      const asked = String(params.scope ?? '').split(' ').filter(Boolean);
      if (asked.some((s) => !offered.includes(s))) {
        throw new errors.InvalidScope('scope exceeds what the policy allows', params.scope);
      }
      const scope = (asked.length ? asked : offered).join(' ');
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        sub: idToken.sub,
        client_id: allowed.client_id,
        resource: params.resource,
        ...(scope ? { scope } : {}),
      };
      const assertion = await new jose.SignJWT(claims)
        .setProtectedHeader({ alg: signingKey.alg, kid: signingKey.kid, typ: ID_JAG_TYP })
        .setIssuer(issuer)
        .setAudience(params.audience)
        .setIssuedAt(now)
        .setExpirationTime(now + ttl)
        .setJti(crypto.randomUUID())
        .sign(privateKey);
      ctx.body = {
        access_token: assertion,
        issued_token_type: ID_JAG,
        // RFC 8693 section 2.2.1: not an access token, so no token type applies.
        token_type: 'N_A',
        expires_in: ttl,
        ...(scope ? { scope } : {}),
      };
    },
    ['subject_token', 'subject_token_type', 'requested_token_type', 'audience', 'scope', 'resource'],
  );
}
