"""Keycloak, a real OpenID provider for the staff pages' sign-in tests (never a mock).

The distribution comes from Maven Central through ``tools/keycloak/pom.xml`` (pinned by version)
and is unpacked to ``.tools/keycloak-<version>``, built once for an in-memory database.
``Keycloak`` starts it on free loopback ports over plain HTTP, with the realm of
``tools/keycloak/realm-bekal.json`` imported:
the platform's roles, the ``ministry`` and ``facilities`` claims as the API's tokens carry them,
the staff pages' client and one user per kind of staff. Keycloak 26 needs Java 21 or newer: the
first JDK found in KEYCLOAK_JAVA_HOME, JAVA_HOME, ``java`` on the PATH or /usr/lib/jvm.

    python -m tests.support.keycloak install   # fetch and unpack (Maven)
    python -m tests.support.keycloak run       # start it until Ctrl-C, printing the issuer
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bekal.devtools.broker import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
VERSION = "26.5.6"
MIN_JAVA = 21
REALM = "bekal"
REALM_FILE = ROOT / "tools" / "keycloak" / "realm-bekal.json"
CLIENT_ID = "bekal-staff"
CLIENT_SECRET = "bekal-staff-dev-secret"
PASSWORD = "sandi-uji"  # every user's in the test realm
JVM_DIRECTORY = Path("/usr/lib/jvm")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KeycloakUnavailable(RuntimeError):
    """Java 21+, Maven or the distribution is missing; the message says how to get them."""


def home(root: Path = ROOT) -> Path:
    return root / ".tools" / f"keycloak-{VERSION}"


def _java_version(java_home: Path) -> int:
    release = java_home / "release"
    if release.is_file():
        found = re.search(r'^JAVA_VERSION="(\d+)', release.read_text(), re.MULTILINE)
        if found:
            return int(found.group(1))
    java = java_home / "bin" / "java"
    if not java.is_file():
        return 0
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
    found = re.search(r'version "(\d+)', out)
    return int(found.group(1)) if found else 0


def java_home() -> Path:
    """A JDK of Java 21 or newer: Keycloak 26 refuses older ones."""
    candidates: list[Path] = []
    for name in ("KEYCLOAK_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(name):
            candidates.append(Path(os.environ[name]))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(on_path).resolve().parents[1])
    if JVM_DIRECTORY.is_dir():
        candidates.extend(sorted(JVM_DIRECTORY.iterdir(), reverse=True))
    for candidate in candidates:
        if _java_version(candidate) >= MIN_JAVA:
            return candidate
    raise KeycloakUnavailable(
        f"Keycloak {VERSION} needs Java {MIN_JAVA} or newer (set KEYCLOAK_JAVA_HOME, or install "
        "Debian's openjdk-21-jre-headless or a Temurin JDK under /usr/lib/jvm)"
    )


def install(root: Path = ROOT) -> Path:
    """The unpacked distribution, fetched with Maven the first time."""
    target = home(root)
    if (target / "bin" / "kc.sh").is_file():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KeycloakUnavailable(
            f"Keycloak {VERSION} is fetched with Maven: install Debian's maven, then run "
            "`make keycloak-install`"
        )
    with tempfile.TemporaryDirectory(prefix="keycloak-dist-") as download:
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(root / "tools" / "keycloak" / "pom.xml"),
                "dependency:copy-dependencies",
                "-DexcludeTransitive=true",
                f"-DoutputDirectory={download}",
            ],
            capture_output=True,
            text=True,
        )
        archive = Path(download) / f"keycloak-quarkus-dist-{VERSION}.tar.gz"
        if result.returncode != 0 or not archive.is_file():
            raise KeycloakUnavailable(
                f"Maven could not fetch Keycloak {VERSION}: {result.stdout[-2000:]}"
            )
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            tar.extractall(partial, filter="tar")
        _build(partial / f"keycloak-{VERSION}")
        shutil.rmtree(target, ignore_errors=True)
        (partial / f"keycloak-{VERSION}").rename(target)
        shutil.rmtree(partial, ignore_errors=True)
    return target


# Fixed when the distribution is built, so that each start skips Quarkus's build step (about
# 20 s here): an in-memory database and a local cache, as `start-dev` would use.
BUILD_OPTIONS = ("--db=dev-mem", "--cache=local")
# Java 24 and newer need this for the thread-local reset Keycloak's worker threads do.
JAVA_OPTS = "--add-opens=java.base/java.lang=ALL-UNNAMED"


def _build(dist: Path) -> None:
    env = dict(os.environ, JAVA_HOME=str(java_home()), JAVA_OPTS_APPEND=JAVA_OPTS)
    result = subprocess.run(
        [str(dist / "bin" / "kc.sh"), "build", *BUILD_OPTIONS],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise KeycloakUnavailable(f"kc.sh build failed: {result.stdout[-2000:]}")


# kc.sh runs Java as its own child and forwards SIGTERM to it from a trap. The parent-death
# signal armed before exec stays with the process exec'd, not with that child: Java outlived a
# shell that was killed outright, holding its ports. The launcher is kc.sh up to that point,
# ending in an exec of Java instead, so Java itself is the process that dies with the tests.
_LAUNCH_FROM = "# trap the signals that should be forwarded to the java process"
_EXEC_JAVA = """eval exec "'$JAVA'" "$JAVA_RUN_OPTS"\n"""


def exec_launcher(dist: Path) -> Path:
    """``bin/kc-exec.sh`` beside kc.sh (its options and class path worked out by kc.sh's own
    code): the same start, with Java in the shell's place."""
    script = (dist / "bin" / "kc.sh").read_text()
    cut = script.find(_LAUNCH_FROM)
    if cut < 0:
        raise KeycloakUnavailable(
            f"kc.sh of Keycloak {VERSION} no longer starts Java where expected ({_LAUNCH_FROM!r})"
        )
    launcher = dist / "bin" / "kc-exec.sh"
    text = script[:cut] + _EXEC_JAVA
    if not launcher.is_file() or launcher.read_text() != text:
        partial = launcher.with_suffix(".partial")
        partial.write_text(text)
        partial.chmod(0o755)
        partial.replace(launcher)
    return launcher


@dataclass(frozen=True)
class User:
    username: str
    roles: tuple[str, ...]
    ministry: str
    facilities: tuple[str, ...] = ()
    password: str = PASSWORD


# The realm's users, by what they are in the tests.
OFFICER = User("petugas.tangerang", ("facility_officer",), "corrections", ("LPP-TANGERANG",))
OTHER_OFFICER = User(
    "petugas.pontianak", ("facility_officer",), "corrections", ("LAPAS-PONTIANAK",)
)
ADMIN = User("admin.pusat", ("registry_admin",), "corrections")
INDUSTRY_USER = User("pelatih.industri", ("training_officer",), "industry")
CERTIFIER = User("sertifikasi.industri", ("certification_admin",), "industry")
VIEWER = User("pimpinan.laporan", ("reporting_viewer",), "industry")


@dataclass
class Keycloak:
    """One Keycloak on 127.0.0.1 over plain HTTP, its data in memory (the distribution built
    for that at install); ``start()`` waits until the realm's discovery document answers."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="keycloak-")))
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{REALM}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/certs"

    @property
    def log_file(self) -> Path:
        return self.directory / "keycloak.log"

    def start(self, timeout: float = 240.0) -> None:
        dist = install()
        jdk = java_home()
        # start-dev imports every realm file in data/import; the realm is the repository's.
        imports = dist / "data" / "import"
        imports.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REALM_FILE, imports / REALM_FILE.name)
        env = dict(os.environ)
        env.update(
            JAVA_HOME=str(jdk),
            JAVA_OPTS_APPEND=JAVA_OPTS,
            KC_BOOTSTRAP_ADMIN_USERNAME="admin",
            KC_BOOTSTRAP_ADMIN_PASSWORD="admin",
            JAVA_OPTS_KC_HEAP="-Xms64m -Xmx512m",
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(exec_launcher(dist)),
                    "start",
                    "--optimized",
                    "--import-realm",
                    # Plain HTTP on loopback, the host name taken from each request: as in
                    # development mode, without its build step at every start.
                    "--http-enabled=true",
                    "--hostname-strict=false",
                    f"--http-host={self.host}",
                    f"--http-port={self.port}",
                    f"--http-management-port={self.management_port}",
                ],
                cwd=self.directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # SIGTERM, so that Keycloak still shuts down as it does when stopped.
                preexec_fn=die_with_parent(signal.SIGTERM),
                start_new_session=True,
            )
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Keycloak exited with {self.process.returncode}: {self._log_tail()}"
                )
            try:
                if httpx.get(discovery, timeout=2).status_code == 200:
                    self.started_in = time.monotonic() - began
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"Keycloak did not answer within {timeout:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.keycloak")
    parser.add_argument("action", choices=["install", "run"])
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            print(install())
            return 0
        keycloak = Keycloak()
        keycloak.start()
    except KeycloakUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Keycloak {VERSION} ready in {keycloak.started_in:.1f} s: issuer {keycloak.issuer}")
    print(f"client {CLIENT_ID} (secret {CLIENT_SECRET}); users' password: {PASSWORD}")
    try:
        keycloak.process.wait()  # type: ignore[union-attr]
    except KeyboardInterrupt:
        pass
    finally:
        keycloak.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())


class _LoopbackIsSecure(http.cookiejar.DefaultCookiePolicy):
    """Browsers treat http://127.0.0.1 as a secure context and send Secure cookies to it
    (Keycloak marks its own so); the standard library's jar sends them over https only, and
    holds back the ``Version=1`` cookies Keycloak sets unless they are taken as plain ones."""

    def __init__(self) -> None:
        super().__init__(rfc2109_as_netscape=True)

    def return_ok_secure(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        host = urlsplit(request.get_full_url()).hostname
        return host in ("127.0.0.1", "localhost") or super().return_ok_secure(cookie, request)


def browser_like(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client`` sending cookies by a browser's rules for loopback addresses.

    httpx copies its jar into one of default policy for each request, so the header is made
    again, from the client's own jar, just before the request goes out.
    """
    client.cookies.jar.set_policy(_LoopbackIsSecure())

    async def cookies(request: httpx.Request) -> None:
        if "cookie" in request.headers:
            del request.headers["cookie"]
        client.cookies.set_cookie_header(request)

    client.event_hooks["request"].append(cookies)
    return client


_FORM_ACTION = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', re.DOTALL)


def login_form_action(page: str) -> str:
    """Where Keycloak's sign-in page posts its form (the address carries the login session)."""
    found = _FORM_ACTION.search(page)
    if found is None:
        raise AssertionError(f"not Keycloak's sign-in page: {page[:500]}")
    return found.group(1).replace("&amp;", "&")


async def submit_login(client: httpx.AsyncClient, page: httpx.Response, user: User) -> str:
    """Fill Keycloak's sign-in form on ``page`` as ``user``, as a browser would; the address
    Keycloak sends the browser back to (the client's redirect URI with the code)."""
    answer = await client.post(
        login_form_action(page.text),
        data={"username": user.username, "password": user.password, "credentialId": ""},
        follow_redirects=False,
    )
    if answer.status_code != 302:
        raise AssertionError(
            f"Keycloak refused the sign-in ({answer.status_code}): {answer.text[:500]}"
        )
    return answer.headers["location"]
