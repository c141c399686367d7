"""A real OpenID provider for the tests: panva's certified node-oidc-provider, run by
oidc-provider/server.mjs (see oidc-provider/README.md), in a process of its own.

`OidcProvider` installs the Node packages (`npm ci`) when node_modules is missing or stale,
writes a configuration (accounts, clients, keys, token lifetimes) to a temporary directory,
starts `node server.mjs CONFIG` on a free loopback port and waits for its "ready" line. It can be
restarted with other signing keys (`restart(keys=ROTATED_KEYS)`), keeping its issuer.

The provider's pages are plain HTML forms, so the tests can sign in without a browser:
`complete_browser_login` follows an authorization request through the login form (fields
`username`, `password`) and automatic consent to the redirect back to the relying party;
`complete_device_login` does the same for a device-flow verification URI (user code, confirm,
login). A missing node or npm raises RuntimeError naming what to install.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.postgres import free_port

PROVIDER_DIR = Path(__file__).resolve().parent.parent / "oidc-provider"
KEYS = PROVIDER_DIR / "keys.json"
ROTATED_KEYS = PROVIDER_DIR / "keys-rotated.json"
START_TIMEOUT_S = 30.0
NPM_TIMEOUT_S = 300.0
# oidc-provider 9 (and jose 6) need Node.js 20.19 or later (22 LTS is what it supports); Debian
# 12's own nodejs is 18: there, take NodeSource's or Debian 13's.
MIN_NODE = (20, 19)

WEB_CLIENT_ID = "aifactory-portal"
WEB_CLIENT_SECRET = "aifactory-portal-secret"
CLI_CLIENT_ID = "aifactory-cli"
SHORT_CLIENT_ID = "aifactory-portal-short"  # a web client whose ID tokens live 2 seconds
SHORT_ID_TOKEN_TTL_S = 2
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8000/login/demo/callback"
DEFAULT_POST_LOGOUT_REDIRECT_URI = "http://127.0.0.1:8000/login"
REGISTRATION_TOKEN = "aifactory-test-registration-token"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ALL_SCOPES = "openid profile email offline_access schac_home_organization entitlements"

DEFAULT_ACCOUNTS: list[dict[str, Any]] = [
    {
        "id": "anna",
        "password": "anna-password",
        "claims": {
            "sub": "uva-anna-de-vries",
            "name": "Anna de Vries",
            "given_name": "Anna",
            "family_name": "de Vries",
            "email": "a.devries@uva.nl",
            "email_verified": True,
            "schac_home_organization": "uva.nl",
            "eduperson_entitlement": [
                "urn:mace:surf.nl:aifactory:researcher",
                "urn:mace:surf.nl:aifactory:project:climate-llm:member",
            ],
            "eduperson_affiliation": ["member", "employee", "faculty"],
        },
    },
    {
        "id": "bram",
        "password": "bram-password",
        "claims": {
            "sub": "tud-bram-jansen",
            "name": "Bram Jansen",
            "given_name": "Bram",
            "family_name": "Jansen",
            "email": "b.jansen@tudelft.nl",
            "email_verified": True,
            "schac_home_organization": "tudelft.nl",
            "eduperson_entitlement": ["urn:mace:surf.nl:aifactory:researcher"],
            "eduperson_affiliation": ["member", "student"],
        },
    },
]


def web_client(
    client_id: str = WEB_CLIENT_ID,
    client_secret: str = WEB_CLIENT_SECRET,
    redirect_uris: Sequence[str] = (DEFAULT_REDIRECT_URI,),
    post_logout_redirect_uris: Sequence[str] = (DEFAULT_POST_LOGOUT_REDIRECT_URI,),
    *,
    id_token_ttl: int | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    """A confidential web client (client_secret_basic, authorization code with PKCE S256)."""
    client: dict[str, Any] = {
        "client_id": client_id,
        "client_secret": client_secret,
        "client_name": "AI Factory portal",
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "redirect_uris": list(redirect_uris),
        "post_logout_redirect_uris": list(post_logout_redirect_uris),
    }
    if id_token_ttl is not None:
        client["id_token_ttl"] = id_token_ttl
    return client | metadata


def cli_client(
    client_id: str = CLI_CLIENT_ID,
    redirect_uris: Sequence[str] = ("http://127.0.0.1/callback",),
    **metadata: Any,
) -> dict[str, Any]:
    """A public native client: device flow, refresh tokens, and authorization code with PKCE
    through a loopback redirect (any port, RFC 8252)."""
    client: dict[str, Any] = {
        "client_id": client_id,
        "client_name": "AI Factory CLI",
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "grant_types": [DEVICE_CODE_GRANT, "refresh_token", "authorization_code"],
        "response_types": ["code"],
        "redirect_uris": list(redirect_uris),
    }
    return client | metadata


def default_clients() -> list[dict[str, Any]]:
    return [
        web_client(),
        web_client(SHORT_CLIENT_ID, id_token_ttl=SHORT_ID_TOKEN_TTL_S),
        cli_client(),
    ]


def _need(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise RuntimeError(
            f"{program} not found: the tests' OpenID provider (oidc-provider/) needs Node.js "
            f"and npm; install Debian's {package} (make system-deps does)"
        )
    return path


def _check_node_version(node: str) -> None:
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    try:
        found = tuple(int(part) for part in version.lstrip("v").split(".")[:2])
    except ValueError:
        found = (0, 0)
    if found < MIN_NODE:
        raise RuntimeError(
            f"{node} is Node.js {version or '(unknown)'}: the tests' OpenID provider "
            f"(oidc-provider/) needs Node.js {MIN_NODE[0]}.{MIN_NODE[1]} or later"
        )


def ensure_node_modules(directory: Path = PROVIDER_DIR) -> None:
    """`npm ci` when node_modules is missing or was installed from another package-lock.json."""
    _check_node_version(_need("node", "nodejs"))
    lock = directory / "package-lock.json"
    installed = directory / "node_modules" / ".package-lock.json"
    if installed.exists() and _lock_packages(installed) == _lock_packages(lock):
        return
    npm = _need("npm", "npm")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm ci in {directory} failed:\n{done.stdout}\n{done.stderr}")


def _lock_packages(path: Path) -> dict[str, Any]:
    """The installed packages a lock file names (npm's hidden lock leaves out the root)."""
    packages = json.loads(path.read_text()).get("packages", {})
    return {
        name: (entry.get("version"), entry.get("integrity"))
        for name, entry in packages.items()
        if name.startswith("node_modules/")
    }


@dataclass
class OidcProvider:
    """A running node-oidc-provider; use as a context manager or call start()/stop()."""

    accounts: list[dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_ACCOUNTS))
    clients: list[dict[str, Any]] = field(default_factory=default_clients)
    keys: Path | Mapping[str, Any] = KEYS
    ttl: dict[str, int] = field(default_factory=dict)
    port: int = 0
    extra_config: dict[str, Any] = field(default_factory=dict)
    workdir: Path = field(init=False)
    _process: subprocess.Popen[str] | None = field(default=None, init=False, repr=False)
    _log: list[str] = field(default_factory=list, init=False, repr=False)
    _readers: list[threading.Thread] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="aifactory-oidc-"))

    # ---- where it is ----

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.json"

    def url(self, path: str) -> str:
        return self.issuer + path

    def discovery(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(self.discovery_url, timeout=10).raise_for_status().json()
        return result

    def jwks(self) -> dict[str, Any]:
        uri = self.discovery()["jwks_uri"]
        result: dict[str, Any] = httpx.get(uri, timeout=10).raise_for_status().json()
        return result

    def account(self, account_id: str) -> dict[str, Any]:
        return next(a for a in self.accounts if a["id"] == account_id)

    def client(self, client_id: str) -> dict[str, Any]:
        return next(c for c in self.clients if c["client_id"] == client_id)

    @property
    def log(self) -> str:
        """What the provider wrote to stderr (and stdout) so far."""
        return "".join(self._log)

    # ---- running it ----

    def config(self) -> dict[str, Any]:
        keys = self.keys if isinstance(self.keys, Mapping) else str(Path(self.keys).resolve())
        return {
            "port": self.port,
            "keys": keys,
            "ttl": self.ttl,
            "accounts": self.accounts,
            "clients": self.clients,
            "registration_token": REGISTRATION_TOKEN,
            **self.extra_config,
        }

    def start(self) -> Self:
        ensure_node_modules()
        node = _need("node", "nodejs")
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self._log = []
        process = subprocess.Popen(
            [node, "server.mjs", str(self.config_path)],
            cwd=PROVIDER_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NODE_ENV": "development"},
        )
        self._process = process
        ready = threading.Event()
        assert process.stdout is not None
        assert process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(process.stdout, ready), daemon=True),
            threading.Thread(target=self._read, args=(process.stderr, None), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the OpenID provider did not start (exit {process.returncode}):\n{self.log}"
                )
        return self

    def _read(self, stream: Any, ready: threading.Event | None) -> None:
        for line in stream:
            self._log.append(line)
            if ready is not None and line.startswith("ready "):
                ready.set()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def restart(
        self,
        *,
        keys: Path | Mapping[str, Any] | None = None,
        accounts: list[dict[str, Any]] | None = None,
        clients: list[dict[str, Any]] | None = None,
        ttl: dict[str, int] | None = None,
    ) -> Self:
        """Stops and starts it again on the same port (same issuer), changing what is given.
        Its state (sessions, grants, tokens) is in memory, so a restart forgets it."""
        self.stop()
        if keys is not None:
            self.keys = keys
        if accounts is not None:
            self.accounts = accounts
        if clients is not None:
            self.clients = clients
        if ttl is not None:
            self.ttl = ttl
        return self.start()

    def register_client(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """Adds a client to the running provider (dynamic registration; gone after a restart
        unless also added to `clients`). Returns the registered metadata (with client_secret)."""
        response = httpx.post(
            self.url("/reg"),
            json=dict(metadata),
            headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"},
            timeout=10,
        )
        if response.status_code != 201:
            raise RuntimeError(f"client registration refused: {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---- the provider's forms, driven with httpx ----


@dataclass
class Form:
    action: str
    method: str
    id: str | None
    fields: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # name -> type
    submit: tuple[str, str] | None = None  # the first named submit button


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = Form(a.get("action", ""), a.get("method", "get").lower(), a.get("id"))
            self.forms.append(self._current)
        elif self._current is None:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind == "submit":
                self._current.submit = self._current.submit or (a["name"], a.get("value", ""))
            else:
                self._current.fields[a["name"]] = a.get("value", "")
                self._current.inputs[a["name"]] = kind
        elif tag == "button" and a.get("name") and a.get("type", "submit") == "submit":
            self._current.submit = self._current.submit or (a["name"], a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def page_forms(html: str) -> list[Form]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


ABORT_FORMS = ("abort", "op.deviceAbortForm")


def is_authorization_response(url: str) -> bool:
    """A redirect back to a relying party: code or error, with state or iss."""
    query = parse_qs(urlsplit(url).query)
    return ("code" in query or "error" in query) and ("state" in query or "iss" in query)


def follow_forms(
    client: httpx.Client,
    url: str,
    *,
    username: str | None = None,
    password: str | None = None,
    user_code: str | None = None,
    stop: Callable[[str], bool] = is_authorization_response,
    max_steps: int = 30,
) -> httpx.Response:
    """Browses like a user who always says yes: follows redirects, and on each page submits its
    first form that is not an abort form (a login form with username and password, a user-code
    form with its code, a confirmation, a sign-out), until a page has no form, or a redirect
    goes to a URL `stop` accepts: that redirect response is returned unfollowed (its Location
    is then the relying party's callback with code and state). A refused login raises
    RuntimeError."""
    response = client.get(url)
    for _ in range(max_steps):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if stop(location):
                return response
            response = client.get(location)
            continue
        forms = [f for f in page_forms(response.text) if (f.id or "") not in ABORT_FORMS]
        if not forms or response.status_code >= 500:
            return response
        form = forms[0]
        data = dict(form.fields)
        if "password" in form.inputs.values():
            if username is None or password is None:
                raise RuntimeError(f"{response.url} asks to sign in; no username and password")
            if response.status_code == 401:
                raise RuntimeError(f"the provider refused the login of {username!r}")
            user_field = next(n for n, t in form.inputs.items() if t in ("text", "email"))
            password_field = next(n for n, t in form.inputs.items() if t == "password")
            data[user_field] = username
            data[password_field] = password
        if "user_code" in form.inputs and form.inputs["user_code"] == "text":
            if not data.get("user_code"):
                if user_code is None:
                    raise RuntimeError(f"{response.url} asks for a user code; none given")
                data["user_code"] = user_code
            elif "error" in response.text and "incorrect" in response.text:
                raise RuntimeError("the provider refused the user code")
        if form.submit is not None:
            data.setdefault(form.submit[0], form.submit[1])
        action = urljoin(str(response.url), form.action or str(response.url))
        if form.method == "post":
            response = client.post(action, data=data)
        else:
            response = client.get(action, params=data)
    raise RuntimeError(f"no end to the provider's pages after {max_steps} steps at {url}")


def complete_browser_login(
    client: httpx.Client,
    url: str,
    username: str,
    password: str,
    *,
    stop: Callable[[str], bool] = is_authorization_response,
) -> httpx.Response:
    """Signs in through the provider's pages, starting at `url` (an authorization request, or a
    relying party's page that redirects to one), in `client` (its cookies are the browser's).
    Returns the provider's redirect back to the relying party, unfollowed: its Location header
    is the redirect URI with code, state and iss (or error). `client` must not follow redirects
    by itself (httpx's default)."""
    response = follow_forms(client, url, username=username, password=password, stop=stop)
    if not response.is_redirect:
        raise RuntimeError(
            f"sign-in at {url} ended on {response.url} ({response.status_code}), "
            f"not a redirect back:\n{response.text[:2000]}"
        )
    return response


def complete_device_login(
    provider: OidcProvider,
    verification_uri_complete: str,
    username: str,
    password: str,
    *,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """Approves a device authorization as the user would in a browser: opens the verification
    URI (with its user code), continues, confirms, signs in; consent is automatic. Returns the
    provider's final page ("Sign-in success"); the device's token request succeeds after it."""
    assert verification_uri_complete.startswith(provider.issuer), verification_uri_complete
    own = client is None
    browser = client or httpx.Client(timeout=10)
    try:
        response = follow_forms(
            browser, verification_uri_complete, username=username, password=password
        )
    finally:
        if own:
            browser.close()
    if response.status_code != 200 or "Sign-in success" not in response.text:
        raise RuntimeError(
            f"device sign-in ended on {response.url} ({response.status_code}):\n"
            f"{response.text[:2000]}"
        )
    return response
