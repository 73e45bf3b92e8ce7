"""The benchmark's third baseline: a Flask + Authlib authorization server, the stack people most
often hand-roll, written as Authlib's own documentation and example OIDC server write it.

Flask 2.2, Authlib 1.2 (its Flask integration and SQLAlchemy mixins), Flask-SQLAlchemy 3 on a
SQLite file in WAL mode, bcrypt for passwords, a Flask signed-cookie session for the person who
signed in; served by gunicorn (servers.ts starts it with 2 gthread workers of 4 threads). It answers what the
bench's scenarios call, at Gatehouse's paths: discovery, /jwks, /token (client_credentials,
authorization_code with PKCE, rotating refresh_token), /userinfo, /authorize with a sign-in page
and a consent page for prompt=consent. Authlib 1.2 has no resource indicators (RFC 8707) nor
RFC 9068 access tokens, so the token generator reads the request's `resource` itself: the JWT
API gets an RS256 JWT access token, everything else an opaque one. Every token is stored, as
Authlib's SQLAlchemy integration stores them, so /userinfo and revocation look them up.

Run by the bench, not by hand; with the Debian packages python3-authlib, python3-flask,
python3-flask-sqlalchemy, python3-sqlalchemy, python3-bcrypt and gunicorn:
  DATABASE_URL=file:/tmp/a.db AUTHLIB_SEED='{...}' /usr/bin/python3 authlib_server.py seed
  DATABASE_URL=file:/tmp/a.db ISSUER=http://127.0.0.1:8000 SECRETS=... \\
    /usr/bin/gunicorn -w 2 -k gthread --threads 4 -b 127.0.0.1:8000 --chdir test/bench authlib_server:app
"""
import html
import json
import os
import sys
import time
from urllib.parse import urlencode

import bcrypt
from flask import Flask, Response, jsonify, redirect, request, session
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.pool import QueuePool
from sqlalchemy.engine import Engine

from authlib.common.security import generate_token
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.integrations.sqla_oauth2 import (
    OAuth2AuthorizationCodeMixin,
    OAuth2ClientMixin,
    OAuth2TokenMixin,
    create_bearer_token_validator,
    create_query_client_func,
    create_save_token_func,
)
from authlib.jose import JsonWebKey, KeySet, jwt
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode

ISSUER = os.environ.get('ISSUER', 'http://127.0.0.1:8000')
# The bench serves every server over plain HTTP on 127.0.0.1; Authlib refuses that unless told.
os.environ['AUTHLIB_INSECURE_TRANSPORT'] = '1'
DATABASE = os.environ['DATABASE_URL'].removeprefix('file:')

app = Flask(__name__)
app.config['SECRET_KEY'] = os.environ.get('SECRETS', 'authlib-bench-secret').split(',')[0]
app.config['SQLALCHEMY_DATABASE_URI'] = f'sqlite:///{DATABASE}'
# SQLAlchemy 1.4 gives a SQLite file no pool (NullPool): every request would open a connection and
# close it, and closing the last one checkpoints and removes the WAL. Keep connections, as
# SQLAlchemy 2 does by default.
app.config['SQLALCHEMY_ENGINE_OPTIONS'] = {'poolclass': QueuePool, 'connect_args': {'check_same_thread': False}}
db = SQLAlchemy(app)


@event.listens_for(Engine, 'connect')
def sqlite_pragmas(connection, _record):
    # As Gatehouse runs SQLite: WAL, a 5 s busy timeout, the default (full) synchronous commits.
    cursor = connection.cursor()
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA busy_timeout=5000')
    cursor.close()


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(200), unique=True, nullable=False)
    password_hash = db.Column(db.String(100), nullable=False)

    def get_user_id(self):
        return self.id


class Client(db.Model, OAuth2ClientMixin):
    id = db.Column(db.Integer, primary_key=True)


class AuthorizationCode(db.Model, OAuth2AuthorizationCodeMixin):
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey('user.id', ondelete='CASCADE'))


class Token(db.Model, OAuth2TokenMixin):
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey('user.id', ondelete='CASCADE'))

    def is_refresh_token_valid(self):
        return not self.refresh_token_revoked_at and self.issued_at + self.expires_in * 2 > time.time()


class SigningKey(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    jwk = db.Column(db.Text, nullable=False)


# --- keys, resources and the token generator ---------------------------------------------------

def load_settings():
    with app.app_context():
        key = SigningKey.query.first()
        settings = json.loads(key.jwk)
    return settings


SETTINGS = load_settings() if sys.argv[1:2] != ['seed'] else None
PRIVATE_JWK = SETTINGS and SETTINGS['key']
JWT_RESOURCES = set(SETTINGS['jwtResources']) if SETTINGS else set()
# Imported once: handing Authlib the JWK dict makes it load (and check) the RSA key on every
# signature, about 15 times the cost of the signature itself.
PRIVATE_KEY = JsonWebKey.import_key(PRIVATE_JWK) if SETTINGS else None
PUBLIC_JWKS = KeySet([PRIVATE_KEY]).as_dict(is_private=False) if SETTINGS else None


def access_token(client, grant_type, scope):
    resource = request.form.get('resource')
    if grant_type != 'client_credentials' or resource not in JWT_RESOURCES:
        return generate_token(42)
    now = int(time.time())
    claims = {'iss': ISSUER, 'sub': client.client_id, 'aud': resource, 'client_id': client.client_id, 'iat': now, 'exp': now + 600, 'jti': generate_token(24), 'scope': scope}
    return jwt.encode({'alg': 'RS256', 'typ': 'at+jwt', 'kid': PRIVATE_JWK['kid']}, claims, PRIVATE_KEY).decode()


def bearer_token(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
    """Authlib's BearerTokenGenerator, except that a refresh token needs offline_access."""
    scope = client.get_allowed_scope(scope) if scope else scope
    token = {'token_type': 'Bearer', 'access_token': access_token(client, grant_type, scope), 'expires_in': expires_in or (600 if grant_type == 'client_credentials' else 3600)}
    if include_refresh_token and scope and 'offline_access' in scope.split():
        token['refresh_token'] = generate_token(48)
    if scope:
        token['scope'] = scope
    return token


def user_info(user, scope):
    info = UserInfo(sub=str(user.id))
    if 'email' in scope.split():
        info['email'] = user.email
        info['email_verified'] = True
    return info


# --- grants -------------------------------------------------------------------------------------

class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic']

    def save_authorization_code(self, code, req):
        item = AuthorizationCode(
            code=code, client_id=req.client.client_id, redirect_uri=req.redirect_uri, scope=req.scope, user_id=req.user.id,
            nonce=req.data.get('nonce'), code_challenge=req.data.get('code_challenge'), code_challenge_method=req.data.get('code_challenge_method'),
        )
        db.session.add(item)
        db.session.commit()
        return item

    def query_authorization_code(self, code, client):
        item = AuthorizationCode.query.filter_by(code=code, client_id=client.client_id).first()
        if item and not item.is_expired():
            return item

    def delete_authorization_code(self, authorization_code):
        db.session.delete(authorization_code)
        db.session.commit()

    def authenticate_user(self, authorization_code):
        return db.session.get(User, authorization_code.user_id)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic']
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        token = Token.query.filter_by(refresh_token=refresh_token).first()
        if token and token.is_refresh_token_valid():
            return token

    def authenticate_user(self, credential):
        return db.session.get(User, credential.user_id)

    def revoke_old_credential(self, credential):
        credential.refresh_token_revoked_at = int(time.time())
        db.session.add(credential)
        db.session.commit()


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic']


class OpenIDConnect(OpenIDCode):
    def exists_nonce(self, nonce, req):
        return AuthorizationCode.query.filter_by(client_id=req.client_id, nonce=nonce).first() is not None

    def get_jwt_config(self, grant):
        return {'key': PRIVATE_KEY, 'alg': 'RS256', 'iss': ISSUER, 'exp': 3600}

    def generate_user_info(self, user, scope):
        return user_info(user, scope)


server = AuthorizationServer(app, query_client=create_query_client_func(db.session, Client), save_token=create_save_token_func(db.session, Token))
server.register_token_generator('default', bearer_token)
server.register_grant(AuthorizationCodeGrant, [OpenIDConnect(require_nonce=False), CodeChallenge(required=True)])
server.register_grant(RefreshTokenGrant)
server.register_grant(ClientCredentialsGrant)

require_oauth = ResourceProtector()
require_oauth.register_token_validator(create_bearer_token_validator(db.session, Token)())


# --- routes -------------------------------------------------------------------------------------

DISCOVERY = {
    'issuer': ISSUER,
    'authorization_endpoint': f'{ISSUER}/authorize',
    'token_endpoint': f'{ISSUER}/token',
    'userinfo_endpoint': f'{ISSUER}/userinfo',
    'jwks_uri': f'{ISSUER}/jwks',
    'response_types_supported': ['code'],
    'grant_types_supported': ['authorization_code', 'refresh_token', 'client_credentials'],
    'subject_types_supported': ['public'],
    'id_token_signing_alg_values_supported': ['RS256'],
    'scopes_supported': ['openid', 'email', 'offline_access'],
    'token_endpoint_auth_methods_supported': ['client_secret_basic'],
    'code_challenge_methods_supported': ['S256'],
    'claims_supported': ['sub', 'email', 'email_verified'],
}


def page(body, status=200):
    return Response(f'<!doctype html>{body}', status=status, content_type='text/html; charset=utf-8')


def signed_in_user():
    user_id = session.get('user_id')
    return db.session.get(User, user_id) if user_id else None


@app.get('/.well-known/openid-configuration')
def discovery():
    return jsonify(DISCOVERY)


@app.get('/jwks')
def jwks():
    return jsonify(PUBLIC_JWKS)


@app.get('/authorize')
def authorize():
    user = signed_in_user()
    if not user:
        return redirect(f'/login?{urlencode({"next": request.full_path})}')
    if request.args.get('prompt') == 'consent':
        action = html.escape(f'/authorize/confirm?{request.query_string.decode()}')
        return page(f'<form method="post" action="{action}"><button>Allow</button></form>')
    return server.create_authorization_response(grant_user=user)


@app.post('/authorize/confirm')
def confirm():
    user = signed_in_user()
    if not user:
        return page('<p>no session</p>', 400)
    return server.create_authorization_response(grant_user=user)


@app.route('/login', methods=['GET', 'POST'])
def login():
    next_path = request.values.get('next', '/')
    if request.method == 'POST':
        user = User.query.filter_by(email=request.form.get('email', '')).first()
        if user and bcrypt.checkpw(request.form.get('password', '').encode(), user.password_hash.encode()):
            session['user_id'] = user.id
            return redirect(next_path if next_path.startswith('/authorize?') else '/')
    fields = '<input name="email"><input name="password" type="password">'
    return page(f'<form method="post" action="/login"><input type="hidden" name="next" value="{html.escape(next_path)}">{fields}<button>Sign in</button></form>', 401 if request.method == 'POST' else 200)


@app.post('/token')
def token():
    return server.create_token_response()


@app.get('/userinfo')
@require_oauth('openid')
def userinfo():
    user = db.session.get(User, current_token.user_id)
    return jsonify(user_info(user, current_token.scope))


# --- seeding (once, before gunicorn starts the workers) -----------------------------------------

def seed(spec):
    """spec: {clients: [{client_id, client_secret, redirect_uris, grant_types, scope}], jwtResources, emails, password, bcryptCost}."""
    key = JsonWebKey.generate_key('RSA', 2048, is_private=True).as_dict(is_private=True)
    key.update({'alg': 'RS256', 'use': 'sig', 'kid': 'rs256'})
    with app.app_context():
        db.drop_all()
        db.create_all()
        db.session.add(SigningKey(jwk=json.dumps({'key': key, 'jwtResources': spec['jwtResources']})))
        password_hash = bcrypt.hashpw(spec['password'].encode(), bcrypt.gensalt(spec['bcryptCost'])).decode()
        for email in spec['emails']:
            db.session.add(User(email=email, password_hash=password_hash))
        for c in spec['clients']:
            client = Client(client_id=c['client_id'], client_secret=c['client_secret'], client_id_issued_at=int(time.time()))
            client.set_client_metadata({
                'redirect_uris': c.get('redirect_uris', []), 'grant_types': c['grant_types'], 'scope': c['scope'],
                'response_types': ['code'] if 'authorization_code' in c['grant_types'] else [], 'token_endpoint_auth_method': 'client_secret_basic',
            })
            db.session.add(client)
        db.session.commit()


if __name__ == '__main__' and sys.argv[1:2] == ['seed']:
    seed(json.loads(os.environ['AUTHLIB_SEED']))
