// A real OpenID Connect provider for the sign-in tests (tests/oidc_provider.py starts it on loopback).
// oidc-provider's own development login form: any login with any password signs in as that login.
// Usage: node provider.mjs PORT REDIRECT_URI CLIENT_ID CLIENT_SECRET
import Provider from "oidc-provider";

const [port, redirectUri, clientId, clientSecret] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
// Names the provider gives its accounts; any other login is an account with no name (its email remains).
const NAMES = { ada: "Ada Lovelace", grace: "Grace Hopper" };

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [redirectUri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  }],
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  // The claims in the ID token itself: Streamlit reads the person from it, not from the userinfo endpoint.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: NAMES[id], email: `${id}@school.example`, email_verified: true };
      },
    };
  },
  // A first-party client: the consent is given, so a sign-in is the login form alone.
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile");
    await grant.save();
    return grant;
  },
  cookies: { keys: ["vae-lab-tests-only"] },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`oidc-provider ready at ${issuer}`));
