#!/usr/bin/python3
# no installable server provides htvault-config's OAuth secrets plugin, so this
# stub follows its HTTP protocol exactly.
#
# A Vault look-alike for tests: the endpoints that htgettoken 2.x uses against
# an htvault-config server (HashiCorp Vault + vault-plugin-auth-kerberos +
# vault-plugin-secrets-oauthapp), with real Kerberos: the SPNEGO/Kerberos token
# in "Authorization: Negotiate ..." is accepted by MIT GSSAPI (python3-gssapi)
# with the service keytab, exactly as a server would, including replay
# detection.
#
# Run with Debian's /usr/bin/python3 (python3-gssapi is a Debian package):
#
#   /usr/bin/python3 tests/vault/vault_stub.py --port 0 \
#       --service-keytab DIR/service.keytab [--krb5-config DIR/krb5.conf] \
#       --issuer NAME --role ROLE [--role ROLE2 ...] \
#       [--principal-map robot/ci.example.org@ROBOT.TEST=credkey ...] \
#       [--allow-any-principal] [--policy-domain DOMAIN] \
#       --token-source FILE|http://127.0.0.1:PORT/__test/mint \
#       [--mint-client-id robot-basic] [--mint-scope S] [--mint-audience A] \
#       [--login-ttl 2764800] [--max-ttl 2764800]
#
# Allowed principals are those given with --principal-map (default
# "robot/ci.example.org@ROBOT.TEST="), or all with --allow-any-principal. An
# empty credkey means the principal without its realm: htvault-config's
# policy uses the kerberos alias name, e.g. "robot/ci.example.org", so the
# secret path is secret/oauth/creds/<issuer>/robot/ci.example.org:<role>.
#
# With --tls-cert/--tls-key it serves https (htgettoken refuses plain http).
#
# Prints one JSON line when ready:  {"url":"http://127.0.0.1:PORT","port":PORT,"pid":PID}
# Logs one line per request on stderr (never token values).
# Exits on SIGTERM/SIGINT, and on EOF of stdin when stdin is a pipe or socket
# (--exit-on-stdin-eof auto|yes|no; auto ignores /dev/null and terminals).
#
# Vault endpoints (JSON bodies like real Vault; errors are {"errors":[...]}):
#   POST|PUT /v1/auth/kerberos-<issuer>_<role>/login   Authorization: Negotiate <b64>
#       200 {"auth":{"client_token":"hvs....","accessor":..,"policies":[..],
#            "token_policies":[..],"metadata":{"user":..,"realm":..},
#            "lease_duration":N,"renewable":true,...}}
#       401 + "WWW-Authenticate: Negotiate" for a missing/garbage/replayed token
#       403 {"errors":["permission denied"]} for a principal not allowed
#   GET|POST /v1/auth/token/lookup-self   X-Vault-Token
#       200 {"data":{"ttl":N,"expire_time":"RFC3339","policies":[..],"display_name":..,...}}
#   POST|PUT /v1/auth/token/create        X-Vault-Token, {"ttl":"604800s","renewable":"false"}
#       200 {"auth":{"client_token":..,"lease_duration":N,"renewable":false,...}}
#   POST|PUT /v1/auth/token/revoke-self   X-Vault-Token          -> 204
#   GET /v1/sys/health                     (no token, as in Vault)
#       200 {"initialized":true,"sealed":false,"standby":false,"server_time_utc":N,
#            "version":..,"cluster_name":..,...}
#   DELETE /v1/secret/oauth/creds/<issuer>/<credkey>:<role>   X-Vault-Token
#       204: the stored credential (refresh token) is deleted, what htdestroytoken -f
#       sends (htvault-config's kerberos policy grants "delete" on this path; the
#       oauthapp plugin's creds delete answers no body, and deleting nothing is no
#       error). Afterwards reads of that path get 404 {"errors":[]}.
#       403 permission denied for a token that may not read the path.
#   GET /v1/secret/oauth/creds/<issuer>/<credkey>:<role>?minimum_seconds=N
#   GET /v1/secret/oauth/sts/<issuer>/<credkey>:<role>?minimum_seconds=N&scopes=..&audiences=..
#       200 {"data":{"access_token":JWT,"type":"Bearer","expire_time":RFC3339},
#            "lease_duration":0,"renewable":false,...}
#       (expire_time is what vault-plugin-secrets-oauthapp sends; omitted when
#        the access token has no "exp" claim)
#       403 permission denied unless the token is valid and its login maps to
#           that issuer, role and credkey; 404 {"errors":[]} if the token source
#           has no token (like the plugin with no stored credential);
#           400 {"errors":["token expired"]} if the token cannot satisfy
#           minimum_seconds.
#   Invalid, expired or revoked Vault tokens get 403 {"errors":["permission denied"]}
#   everywhere. Child tokens die with their parent, as in Vault.
#
# Test-control endpoints (never faulted):
#   GET  /__stub/stats            counts per endpoint, last minimum_seconds, principals...
#   POST /__stub/reset            clear stats and faults; {"tokens":true} also drops tokens
#                                 and restores deleted credentials, {"creds":true} only the latter
#   POST /__stub/expire-tokens    all tokens' ttl -> 0 (invalid); {"ttl":N} sets N seconds left
#   POST /__stub/fail             {"status":503,"times":1,"path":"/v1/","errors":[..],
#                                  "delay_ms":0,"close":false} queue a fault for /v1/ requests
#                                  whose path starts with "path"; "close":true drops the
#                                  connection without answering
#   GET  /__stub/health           {"ok":true}

import argparse
import base64
import datetime
import http.server
import json
import os
import re
import secrets
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

try:
    import gssapi
except ImportError:  # pragma: no cover - explained to the user
    sys.stderr.write(
        "vault_stub.py: python3-gssapi is missing; run it with /usr/bin/python3 "
        "after apt-get install python3-gssapi\n"
    )
    sys.exit(2)

SPNEGO_OID_DER = bytes.fromhex("06062b0601050502")  # 1.3.6.1.5.5.2
KRB5_OID_DER = bytes.fromhex("06092a864886f712010202")  # 1.2.840.113554.1.2.2

ENDPOINTS = (
    "login",
    "lookup_self",
    "token_create",
    "revoke_self",
    "creds",
    "creds_delete",
    "sts",
    "health",
    "other",
)


def log(msg):
    sys.stderr.write("vault_stub: %s\n" % msg)
    sys.stderr.flush()


def rfc3339(ts):
    return (
        datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def rand_id(n=24):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def parse_ttl(value, default):
    """Vault-style duration: int seconds or "<n>s|m|h" (Vault has no "d")."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ValueError("invalid ttl")
    if isinstance(value, (int, float)):
        return int(value)
    m = re.fullmatch(r"\s*(\d+)\s*([smh]?)\s*", str(value))
    if not m:
        raise ValueError("time: unknown unit in duration %r" % value)
    n = int(m.group(1))
    return n * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def parse_bool(value, default):
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("true", "1", "t", "yes"):
        return True
    if s in ("false", "0", "f", "no", ""):
        return False
    raise ValueError("cannot parse %r as bool" % value)


def jwt_exp(token):
    """The "exp" claim of a JWT, or None (never raises)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        exp = claims.get("exp")
        return float(exp) if exp is not None else None
    except Exception:
        return None


class Token:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.tokens = {}  # client_token -> Token
        self.mint_cache = {}  # (credkey, scope, audience) -> (token, exp)
        self.deleted = set()  # (issuer, credkey, role) whose stored credential was deleted
        self.reset_stats()
        self.faults = []

    def reset_stats(self):
        self.stats = {
            "requests": {e: 0 for e in ENDPOINTS},
            "responses": {e: {} for e in ENDPOINTS},
            "last_minimum_seconds": None,
            "minimum_seconds_seen": [],
            "principals": [],
            "denied_principals": [],
            "login_mechs": [],
            "last_create_ttl": None,
            "last_sts_params": None,
            "mints": 0,
            "faults_injected": 0,
            "deleted_creds": [],
        }

    # --- tokens -----------------------------------------------------------

    def valid(self, tok, now=None):
        now = time.time() if now is None else now
        seen = set()
        t = tok
        while t is not None:
            if t.revoked or now >= t.expires or id(t) in seen:
                return False
            seen.add(id(t))
            t = self.tokens.get(t.parent) if t.parent else None
        return True

    def lookup(self, client_token):
        if not client_token:
            return None
        tok = self.tokens.get(client_token)
        if tok is None or not self.valid(tok):
            return None
        return tok

    def new_token(self, **kw):
        client_token = "hvs." + rand_id(24)
        now = time.time()
        tok = Token(
            client_token=client_token,
            accessor=rand_id(24),
            created=now,
            revoked=False,
            entity_id=kw.pop("entity_id", str(uuid.uuid4())),
            **kw,
        )
        tok.expires = now + tok.ttl
        self.tokens[client_token] = tok
        return tok

    def revoke(self, tok):
        tok.revoked = True
        for child in self.tokens.values():
            if child.parent == tok.client_token and not child.revoked:
                self.revoke(child)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the body
    # waits for the client's delayed ACK (~40 ms per request), which real Vault
    # (Go) never does.
    disable_nagle_algorithm = True
    server_version = "vault-stub"
    sys_version = ""

    # ---- plumbing ----------------------------------------------------------

    @property
    def state(self):
        return self.server.state

    def log_message(self, fmt, *args):  # quiet default logging
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def json_body(self, raw):
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            # Vault also accepts form-encoded bodies on some paths
            body = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace")))
        return body if isinstance(body, dict) else {}

    def send(self, status, obj=None, headers=None):
        body = b""
        if status != 204 and obj is not None:
            body = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)
        self._status = status

    def error(self, status, *msgs, headers=None):
        self.send(status, {"errors": list(msgs)}, headers)

    def envelope(self, data=None, auth=None, warnings=None, lease_duration=0):
        return {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": lease_duration,
            "data": data,
            "wrap_info": None,
            "warnings": warnings,
            "auth": auth,
        }

    def vault_token_header(self):
        t = self.headers.get("X-Vault-Token")
        if t:
            return t.strip()
        a = self.headers.get("Authorization", "")
        if a.lower().startswith("bearer "):
            return a[7:].strip()
        return None

    def count(self, endpoint):
        with self.state.lock:
            self.state.stats["requests"][endpoint] += 1

    # ---- dispatch ----------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_LIST(self):
        self.dispatch("LIST")

    def dispatch(self, method):
        self._status = None
        self._who = ""
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        raw = self.read_body()
        endpoint = None
        try:
            if path.startswith("/__stub/"):
                self.control(method, path, raw)
                return
            endpoint = self.classify(path, method)
            self.count(endpoint)
            if self.apply_fault(path):
                return
            if endpoint == "login":
                self.login(method, path)
            elif endpoint == "lookup_self":
                self.lookup_self(method)
            elif endpoint == "token_create":
                self.token_create(method, raw)
            elif endpoint == "revoke_self":
                self.revoke_self(method)
            elif endpoint == "creds_delete":
                self.creds_delete(path)
            elif endpoint == "health":
                self.health(method)
            elif endpoint in ("creds", "sts"):
                self.creds(method, path, query, endpoint)
            else:
                self.error(404, "unsupported path")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # keep the stub alive, report like Vault's 500
            log("internal error on %s %s: %s: %s" % (method, path, type(e).__name__, e))
            if self._status is None:
                try:
                    self.error(500, "internal error: %s" % type(e).__name__)
                except OSError:
                    pass
        finally:
            if endpoint is not None:
                with self.state.lock:
                    r = self.state.stats["responses"][endpoint]
                    key = str(self._status or "closed")
                    r[key] = r.get(key, 0) + 1
            log(
                "%s %s -> %s%s"
                % (method, path, self._status or "closed", self._who and " (%s)" % self._who)
            )

    def classify(self, path, method="GET"):
        if re.fullmatch(r"/v1/auth/kerberos-.+/login/?", path):
            return "login"
        if path in ("/v1/auth/token/lookup-self", "/v1/auth/token/lookup-self/"):
            return "lookup_self"
        if path in ("/v1/auth/token/create", "/v1/auth/token/create/"):
            return "token_create"
        if path in ("/v1/auth/token/revoke-self", "/v1/auth/token/revoke-self/"):
            return "revoke_self"
        if path.startswith("/v1/secret/oauth/creds/"):
            return "creds_delete" if method == "DELETE" else "creds"
        if path in ("/v1/sys/health", "/v1/sys/health/"):
            return "health"
        if path.startswith("/v1/secret/oauth/sts/"):
            return "sts"
        return "other"

    def apply_fault(self, path):
        with self.state.lock:
            fault = None
            for f in self.state.faults:
                if path.startswith(f.get("path", "/v1/")):
                    fault = f
                    break
            if fault is None:
                return False
            fault["times"] -= 1
            if fault["times"] <= 0:
                self.state.faults.remove(fault)
            self.state.stats["faults_injected"] += 1
        if fault.get("delay_ms"):
            time.sleep(fault["delay_ms"] / 1000.0)
        if fault.get("close"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        status = int(fault.get("status", 503))
        errors = fault.get("errors") or ["injected fault: HTTP %d" % status]
        self.send(status, {"errors": errors})
        return True

    # ---- Vault endpoints -----------------------------------------------------

    def login(self, method, path):
        a = self.state.args
        if method not in ("POST", "PUT"):
            return self.error(405, "unsupported operation")
        issuer = role = None
        for r in a.role:
            if path.rstrip("/") == "/v1/auth/kerberos-%s_%s/login" % (a.issuer, r):
                issuer, role = a.issuer, r
        if role is None:
            return self.error(404, "no handler for route \"%s\"" % path[len("/v1/"):])
        negotiate = {"WWW-Authenticate": "Negotiate"}
        authz = self.headers.get("Authorization", "")
        parts = authz.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "negotiate":
            return self.error(401, "Missing or invalid authorization", headers=negotiate)
        try:
            in_token = base64.b64decode(parts[1].strip(), validate=True)
        except (ValueError, TypeError):
            return self.error(401, "could not base64 decode authorization", headers=negotiate)
        if not in_token:
            return self.error(401, "Missing or invalid authorization", headers=negotiate)
        mech = "other"
        if in_token[:1] == b"\x60":
            if SPNEGO_OID_DER in in_token[2:16]:
                mech = "spnego"
            elif KRB5_OID_DER in in_token[2:19]:
                mech = "krb5"
        try:
            ctx = gssapi.SecurityContext(usage="accept", creds=self.server.acceptor_creds)
            out_token = ctx.step(in_token)
            if not ctx.complete:
                return self.error(
                    401, "Kerberos authentication failed: context not complete", headers=negotiate
                )
            principal = str(ctx.initiator_name)
        except gssapi.exceptions.GSSError as e:
            msg = e.gen_message().replace("\n", " ")
            return self.error(401, "Kerberos authentication failed: %s" % msg, headers=negotiate)
        self._who = principal
        user, _, realm = principal.rpartition("@")
        if not user:
            user, realm = principal, ""
        credkeys = self.allowed_credkeys(principal, user)
        with self.state.lock:
            self.state.stats["login_mechs"].append(mech)
            if credkeys is None:
                self.state.stats["denied_principals"].append(principal)
        if credkeys is None:
            return self.error(403, "permission denied")
        policies = ["kerberos-%s_%s" % (issuer, role), "tokenops"]
        with self.state.lock:
            tok = self.state.new_token(
                parent=None,
                policies=policies,
                ttl=a.login_ttl,
                creation_ttl=a.login_ttl,
                renewable=True,
                issuer=issuer,
                role=role,
                credkeys=credkeys,
                principal=principal,
                display_name="kerberos-%s_%s-%s" % (issuer, role, user),
                path="auth/kerberos-%s_%s/login" % (issuer, role),
                meta={"user": user, "realm": realm},
                orphan=True,
            )
            self.state.stats["principals"].append(principal)
        headers = {}
        if out_token:
            headers["WWW-Authenticate"] = "Negotiate " + base64.b64encode(out_token).decode()
        self.send(200, self.envelope(auth=self.auth_obj(tok)), headers)

    def allowed_credkeys(self, principal, user):
        a = self.state.args
        if principal in a.principal_map:
            keys = [a.principal_map[principal] or user]
        elif a.allow_any_principal:
            keys = [user]
        else:
            return None
        if a.policy_domain:
            keys.append(user + "@" + a.policy_domain)
        return keys

    def auth_obj(self, tok):
        return {
            "client_token": tok.client_token,
            "accessor": tok.accessor,
            "policies": list(tok.policies),
            "token_policies": list(tok.policies),
            "identity_policies": None,
            "metadata": tok.meta,
            "lease_duration": tok.ttl,
            "renewable": tok.renewable,
            "entity_id": tok.entity_id,
            "token_type": "service",
            "orphan": tok.orphan,
            "mfa_requirement": None,
            "num_uses": 0,
        }

    def current_token(self):
        with self.state.lock:
            tok = self.state.lookup(self.vault_token_header())
        if tok is not None:
            self._who = tok.principal
        return tok

    def lookup_self(self, method):
        if method not in ("GET", "POST", "PUT"):
            return self.error(405, "unsupported operation")
        tok = self.current_token()
        if tok is None:
            return self.error(403, "permission denied")
        now = time.time()
        data = {
            "accessor": tok.accessor,
            "creation_time": int(tok.created),
            "creation_ttl": tok.creation_ttl,
            "display_name": tok.display_name,
            "entity_id": tok.entity_id,
            "expire_time": rfc3339(tok.expires),
            "explicit_max_ttl": 0,
            "id": tok.client_token,
            "issue_time": rfc3339(tok.created),
            "meta": tok.meta,
            "num_uses": 0,
            "orphan": tok.orphan,
            "path": tok.path,
            "policies": list(tok.policies),
            "renewable": tok.renewable,
            "ttl": max(0, int(tok.expires - now)),
            "type": "service",
        }
        self.send(200, self.envelope(data=data))

    def token_create(self, method, raw):
        a = self.state.args
        if method not in ("POST", "PUT"):
            return self.error(405, "unsupported operation")
        parent = self.current_token()
        if parent is None:
            return self.error(403, "permission denied")
        body = self.json_body(raw)
        try:
            ttl = parse_ttl(body.get("ttl"), a.max_ttl)
            renewable = parse_bool(body.get("renewable"), True)
        except ValueError as e:
            return self.error(400, str(e))
        policies = body.get("policies")
        if isinstance(policies, str):
            policies = [p.strip() for p in policies.split(",") if p.strip()]
        if not policies:
            policies = list(parent.policies)
        if not set(policies) <= set(parent.policies):
            return self.error(400, "child policies must be subset of parent")
        warnings = None
        if ttl > a.max_ttl:
            warnings = [
                "TTL of %r exceeded the effective max_ttl of %r; TTL value is capped accordingly"
                % ("%ds" % ttl, "%ds" % a.max_ttl)
            ]
            ttl = a.max_ttl
        if ttl <= 0:
            ttl = a.max_ttl
        dn = body.get("display_name")
        with self.state.lock:
            self.state.stats["last_create_ttl"] = body.get("ttl")
            tok = self.state.new_token(
                parent=parent.client_token,
                policies=sorted(policies),
                ttl=ttl,
                creation_ttl=ttl,
                renewable=renewable,
                issuer=parent.issuer,
                role=parent.role,
                credkeys=parent.credkeys,
                principal=parent.principal,
                display_name="token-%s" % dn if dn else "token",
                path="auth/token/create",
                meta=body.get("meta"),
                orphan=False,
                entity_id=parent.entity_id,
            )
        auth = self.auth_obj(tok)
        self.send(200, self.envelope(auth=auth, warnings=warnings))

    def revoke_self(self, method):
        if method not in ("POST", "PUT"):
            return self.error(405, "unsupported operation")
        tok = self.current_token()
        if tok is None:
            return self.error(403, "permission denied")
        with self.state.lock:
            self.state.revoke(tok)
        self.send(204)

    def health(self, method):
        if method not in ("GET", "HEAD"):
            return self.error(405, "unsupported operation")
        self.send(
            200,
            {
                "initialized": True,
                "sealed": False,
                "standby": False,
                "performance_standby": False,
                "replication_performance_mode": "disabled",
                "replication_dr_mode": "disabled",
                "server_time_utc": int(time.time()),
                "version": "1.15.6",
                "enterprise": False,
                "cluster_name": "vault-stub",
                "cluster_id": "00000000-0000-0000-0000-000000000000",
            },
        )

    def allowed_path(self, tok, path, endpoint):
        """(issuer, credkey, role) of a secret path this token's policy covers, or None."""
        prefix = "/v1/secret/oauth/%s/" % endpoint
        rest = path[len(prefix):]
        issuer, _, name = rest.partition("/")
        credkey, sep, role = name.rpartition(":")
        if (
            tok is None
            or not sep
            or issuer != tok.issuer
            or role != tok.role
            or credkey not in tok.credkeys
        ):
            return None
        return (issuer, credkey, role)

    def creds_delete(self, path):
        tok = self.current_token()
        key = self.allowed_path(tok, path, "creds")
        if key is None:
            return self.error(403, "permission denied")
        with self.state.lock:
            self.state.deleted.add(key)
            self.state.stats["deleted_creds"].append("%s/%s:%s" % key)
            for k in [k for k in self.state.mint_cache if k[0] == key[1]]:
                del self.state.mint_cache[k]
        self.send(204)

    def creds(self, method, path, query, endpoint):
        if method not in ("GET",):
            return self.error(405, "unsupported operation")
        tok = self.current_token()
        key = self.allowed_path(tok, path, endpoint)
        if key is None:
            return self.error(403, "permission denied")
        credkey = key[1]
        with self.state.lock:
            deleted = key in self.state.deleted
        if deleted:
            # The plugin with no stored credential for this name.
            return self.error(404)
        min_raw = (query.get("minimum_seconds") or [None])[-1]
        try:
            minimum = int(min_raw) if min_raw not in (None, "") else 0
        except ValueError:
            return self.error(
                400,
                "error converting input %s for field \"minimum_seconds\": cannot parse '' as int"
                % min_raw,
            )
        scope = audience = None
        if endpoint == "sts":
            scopes = ",".join(query.get("scopes", []))
            audiences = ",".join(query.get("audiences", []) + query.get("audience", []))
            scope = " ".join(s for s in scopes.split(",") if s) or None
            audience = (audiences.split(",")[0] or None) if audiences else None
        with self.state.lock:
            st = self.state.stats
            st["last_minimum_seconds"] = int(min_raw) if min_raw not in (None, "") else None
            st["minimum_seconds_seen"].append(st["last_minimum_seconds"])
            if endpoint == "sts":
                st["last_sts_params"] = {"scopes": scope, "audience": audience}
        try:
            access_token, exp = self.get_access_token(credkey, minimum, scope, audience)
        except LookupError:
            return self.error(404)
        except TokenExpired:
            return self.error(400, "token expired")
        except MintError as e:
            return self.error(500, str(e))
        data = {"access_token": access_token, "type": "Bearer"}
        if exp is not None:
            data["expire_time"] = rfc3339(exp)
        self.send(200, self.envelope(data=data))

    def get_access_token(self, credkey, minimum, scope, audience):
        a = self.state.args
        src = a.token_source
        now = time.time()
        if not re.match(r"https?://", src):
            try:
                with open(src, "r") as f:
                    token = f.read().strip()
            except FileNotFoundError:
                raise LookupError(src)
            if not token:
                raise LookupError(src)
            exp = jwt_exp(token)
            if exp is not None and exp - minimum <= now:
                raise TokenExpired()
            return token, exp
        key = (credkey, scope or a.mint_scope, audience or a.mint_audience)
        with self.state.lock:
            cached = self.state.mint_cache.get(key)
        if cached is not None:
            token, exp = cached
            if exp is None or exp - minimum > now:
                return token, exp
        token, exp = self.mint(key[1], key[2])
        with self.state.lock:
            self.state.mint_cache[key] = (token, exp)
            self.state.stats["mints"] += 1
        if exp is not None and exp - minimum <= time.time():
            raise TokenExpired()
        return token, exp

    def mint(self, scope, audience):
        a = self.state.args
        req = {"client_id": a.mint_client_id}
        if scope:
            req["scope"] = scope
        if audience:
            req["audience"] = audience
        r = urllib.request.Request(
            a.token_source,
            data=json.dumps(req).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(r, timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise MintError("token source answered HTTP %d" % e.code)
        except (OSError, ValueError) as e:
            raise MintError("token source failed: %s" % type(e).__name__)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise MintError("token source returned no access_token")
        exp = jwt_exp(token)
        if exp is None and isinstance(body.get("expires_in"), (int, float)):
            exp = time.time() + body["expires_in"]
        return token, exp

    # ---- test control -------------------------------------------------------

    def control(self, method, path, raw):
        st = self.state
        body = self.json_body(raw)
        if path == "/__stub/health":
            return self.send(200, {"ok": True})
        if path == "/__stub/stats" and method == "GET":
            with st.lock:
                snap = json.loads(json.dumps(st.stats))
                now = time.time()
                snap["tokens_live"] = sum(1 for t in st.tokens.values() if st.valid(t, now))
                snap["tokens_total"] = len(st.tokens)
                snap["faults_pending"] = sum(f["times"] for f in st.faults)
            return self.send(200, snap)
        if method not in ("POST", "PUT"):
            return self.error(405, "unsupported operation")
        if path == "/__stub/reset":
            with st.lock:
                st.reset_stats()
                st.faults = []
                if body.get("tokens"):
                    st.tokens.clear()
                    st.mint_cache.clear()
                if body.get("tokens") or body.get("creds"):
                    st.deleted.clear()
            return self.send(200, {"ok": True})
        if path == "/__stub/expire-tokens":
            ttl = int(body.get("ttl", 0))
            now = time.time()
            with st.lock:
                n = 0
                for t in st.tokens.values():
                    if st.valid(t, now):
                        t.expires = now + ttl
                        n += 1
            return self.send(200, {"ok": True, "tokens": n, "ttl": ttl})
        if path == "/__stub/fail":
            fault = {
                "status": int(body.get("status", 503)),
                "times": int(body.get("times", 1)),
                "path": str(body.get("path", "/v1/")),
                "errors": body.get("errors"),
                "delay_ms": int(body.get("delay_ms", 0)),
                "close": bool(body.get("close", False)),
            }
            with st.lock:
                st.faults.append(fault)
            return self.send(200, {"ok": True, "fault": fault})
        return self.error(404, "unknown stub control path")


class TokenExpired(Exception):
    pass


class MintError(Exception):
    pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def parse_args(argv):
    p = argparse.ArgumentParser(description="htvault-config look-alike for tests")
    p.add_argument("--host", default="127.0.0.1", help="listen address (loopback only)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tls-cert", help="serve https with this PEM certificate (htgettoken needs https)")
    p.add_argument("--tls-key", help="the certificate's PEM private key")
    p.add_argument("--service-keytab", required=True)
    p.add_argument("--krb5-config", help="sets KRB5_CONFIG for the acceptor")
    p.add_argument("--issuer", required=True)
    p.add_argument("--role", action="append", required=True, help="repeatable")
    p.add_argument(
        "--principal-map",
        action="append",
        default=[],
        metavar="PRINCIPAL=CREDKEY",
        help="allowed principal and its credkey (empty CREDKEY: principal without realm, "
        "as htvault-config's kerberos alias). Default: robot/ci.example.org@ROBOT.TEST=",
    )
    p.add_argument("--allow-any-principal", action="store_true")
    p.add_argument("--policy-domain", help="also allow credkey <user>@DOMAIN")
    p.add_argument("--token-source", required=True, help="FILE or http://127.0.0.1:PORT/...")
    p.add_argument("--mint-client-id", default="robot-basic")
    p.add_argument("--mint-scope", default=None)
    p.add_argument("--mint-audience", default=None)
    p.add_argument("--login-ttl", type=int, default=2764800)
    p.add_argument("--max-ttl", type=int, default=2764800)
    p.add_argument("--exit-on-stdin-eof", choices=("auto", "yes", "no"), default="auto")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        p.error("--host must be a loopback address")
    pm = {}
    for item in args.principal_map or ["robot/ci.example.org@ROBOT.TEST="]:
        k, sep, v = item.partition("=")
        if not sep or not k:
            p.error("--principal-map wants PRINCIPAL=CREDKEY")
        pm[k] = v
    args.principal_map = pm
    return args


def watch_stdin(stop):
    try:
        while os.read(0, 4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    keytab = os.path.abspath(args.service_keytab)
    if not os.path.isfile(keytab):
        log("service keytab %s not found" % keytab)
        return 2
    os.environ["KRB5_KTNAME"] = "FILE:" + keytab
    if args.krb5_config:
        os.environ["KRB5_CONFIG"] = os.path.abspath(args.krb5_config)
    # private replay cache, never /var/tmp
    rcdir = tempfile.mkdtemp(prefix="vault-stub-rcache-")
    os.environ["KRB5RCACHEDIR"] = rcdir
    try:
        acceptor = gssapi.Credentials(usage="accept", store={"keytab": "FILE:" + keytab})
    except gssapi.exceptions.GSSError as e:
        log("cannot acquire acceptor credentials from %s: %s" % (keytab, e.gen_message()))
        return 2

    state = State(args)
    server = Server((args.host, args.port), Handler)
    server.state = state
    server.acceptor_creds = acceptor
    port = server.server_address[1]
    scheme = "http"
    if args.tls_cert:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake runs in each request's thread, on its first read.
        server.socket = ctx.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        scheme = "https"

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    watch = args.exit_on_stdin_eof == "yes"
    if args.exit_on_stdin_eof == "auto":
        try:
            mode = os.fstat(0).st_mode
            watch = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        except OSError:
            watch = False
    if watch:
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()

    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    host = "[%s]" % args.host if ":" in args.host else args.host
    sys.stdout.write(
        json.dumps({"url": "%s://%s:%d" % (scheme, host, port), "port": port, "pid": os.getpid()}, separators=(",", ":")) + "\n"
    )
    sys.stdout.flush()
    log("listening on %s:%d (issuer %s, roles %s)" % (args.host, port, args.issuer, ",".join(args.role)))
    while not stop.wait(0.5):
        pass
    log("shutting down")
    server.shutdown()
    server.server_close()
    try:
        for f in os.listdir(rcdir):
            os.unlink(os.path.join(rcdir, f))
        os.rmdir(rcdir)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
