"""docker-compose.yml, the service Dockerfiles and the database init script agree with the code."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
from functools import cache
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.engine import make_url

from bekal.devtools import apache_kafka
from bekal.shared.cli import DEFAULT_PORTS, SERVICES
from bekal.shared.events.topics import TOPICS, topic_config
from bekal.shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
POSTGRES_INIT = ROOT / "deploy" / "compose" / "postgres-init.sql"
CONSUMER_GROUPS = ("training", "certification", "reporting")
BUILDER_IMAGE = RUNTIME_IMAGE = "python:3.11-slim"
# Anything that compiles or installs has no business in the runtime image.
BUILD_TOOLS = re.compile(
    r"(?<![\w.+-])(gcc|g\+\+|clang|build-essential|make|curl|wget)(?![\w.+-])"
    r"|pip install|uv sync|uv pip|apt-get install|apk add"
)


# --- reading the files -------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), (
        "docker-compose.yml has no 'services' mapping"
    )
    return data


def compose_service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service '{name}'"
    return services[name]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment in either compose spelling (mapping or list of KEY=VALUE)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def built_service(service: dict[str, Any]) -> str | None:
    """The Bekal service whose Dockerfile a compose service is built from, if any."""
    build = service.get("build")
    if build is None:
        return None
    dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
    match = re.fullmatch(r"services/([a-z]+)/Dockerfile", str(PurePosixPath(dockerfile)))
    return match.group(1) if match else None


def service_containers() -> list[str]:
    """Every compose service that runs a Bekal image: the four services and their jobs."""
    return sorted(n for n, s in compose()["services"].items() if built_service(s) is not None)


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # the short form means "started", no condition
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def dockerfile_path(service: str) -> Path:
    return ROOT / "services" / service / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: comments dropped, continuations joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (pending and not line):
            continue
        if not line:
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, f"{path.relative_to(ROOT)} ends inside a line continuation"
    return result


def stages(path: Path) -> list[list[tuple[str, str]]]:
    """The build stages, each starting with its FROM."""
    found: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(path):
        if keyword == "FROM":
            found.append([])
        assert found, f"{path.relative_to(ROOT)}: '{keyword}' before the first FROM"
        found[-1].append((keyword, args))
    return found


def from_image(args: str) -> tuple[str, str | None]:
    """(image, stage name) of a FROM line."""
    words = [w for w in args.split() if not w.startswith("--")]
    name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
    return words[0], name


def env_instructions(stage: list[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, args in stage:
        if keyword != "ENV":
            continue
        words = shlex.split(args)
        if words and "=" not in words[0]:  # the old "ENV KEY value" form
            values[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            key, _, value = word.partition("=")
            values[key] = value
    return values


def exposed_ports(stage: list[tuple[str, str]]) -> set[int]:
    return {
        int(port.split("/")[0])
        for keyword, args in stage
        if keyword == "EXPOSE"
        for port in args.split()
    }


# --- what the code says ------------------------------------------------------------------


def _import_if_present(name: str) -> ModuleType | None:
    """Import a module that exists; a module that exists but fails to import fails the test."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):  # its parent package is missing
            return None
        raise
    return importlib.import_module(name) if spec is not None else None


@cache
def settings_class(service: str) -> type[Settings]:
    """The settings a service reads: its own subclass of Settings where it has one."""
    class_name = f"{service.capitalize()}Settings"
    for module_name in (f"bekal.{service}.settings", f"bekal.{service}"):
        module = _import_if_present(module_name)
        if module is None:
            continue
        cls = getattr(module, class_name, None)
        if cls is not None:
            assert isinstance(cls, type) and issubclass(cls, Settings), (
                f"{module_name}.{class_name} is not a subclass of bekal.shared.settings.Settings"
            )
            return cls
        if service == "certification" and module_name.endswith(".settings"):
            pytest.fail(f"{module_name} exists but defines no {class_name}")
    return Settings


def setting_names(cls: type[Settings]) -> set[str]:
    """Environment names a settings class reads (case-insensitive: fields and string aliases)."""
    names: set[str] = set()
    for field_name, info in cls.model_fields.items():
        names.add(field_name.lower())
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names.add(alias.lower())
    return names


def consumer_dead_letter_topic(group: str) -> str:
    module_name = f"bekal.{group}.handlers"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        pytest.fail(f"{module_name} cannot be imported ({exc}): its dead-letter topic is unknown")
    subscriptions = getattr(module, "subscriptions", None)
    assert subscriptions is not None, (
        f"{module_name} has no module-level 'subscriptions' (Subscriptions('{group}')), "
        "so its dead-letter topic cannot be read"
    )
    return str(subscriptions.dead_letter_topic)


def parse_bool(value: str) -> bool:
    return TypeAdapter(bool).validate_python(value)


# --- docker-compose.yml ------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_built_from_its_own_dockerfile(service: str) -> None:
    spec = compose_service(service)
    assert built_service(spec) == service, (
        f"compose service '{service}' must be built from services/{service}/Dockerfile, "
        f"found build={spec.get('build')!r}"
    )
    assert spec["build"].get("context", ".") in (".", "./"), (
        f"compose service '{service}': the build context must be the repository root "
        "(the uv workspace and the shared library live there)"
    )
    assert dockerfile_path(service).is_file(), f"services/{service}/Dockerfile is missing"


def test_compose_runs_every_bekal_image_it_builds() -> None:
    assert set(SERVICES) <= set(service_containers()), (
        f"docker-compose.yml must run all of {SERVICES}; it builds {service_containers()}"
    )


@pytest.mark.parametrize("container", service_containers())
def test_service_environment_names_are_settings_fields(container: str) -> None:
    spec = compose_service(container)
    assert "env_file" not in spec, (
        f"compose service '{container}' uses env_file: its variables could not be checked"
    )
    env = environment(spec)
    service = built_service(spec)
    assert service is not None
    cls = settings_class(service)
    unknown = sorted(name for name in env if name.lower() not in setting_names(cls))
    assert not unknown, (
        f"compose service '{container}' sets {unknown}, which {cls.__module__}.{cls.__name__} "
        "does not read (a typo, or a setting that does not exist)"
    )
    try:
        cls(**{name.lower(): value for name, value in env.items()})
    except ValidationError as exc:
        pytest.fail(f"compose service '{container}': its environment is not valid settings: {exc}")


@pytest.mark.parametrize("service", SERVICES)
def test_http_port_matches_dockerfile_expose_and_default_ports(service: str) -> None:
    spec = compose_service(service)
    env = environment(spec)
    assert env.get("SERVICE_NAME") == service, (
        f"compose service '{service}' must set SERVICE_NAME={service}, "
        f"has {env.get('SERVICE_NAME')!r}"
    )
    assert "HTTP_PORT" in env, f"compose service '{service}' does not set HTTP_PORT"
    port = int(env["HTTP_PORT"])
    assert port == DEFAULT_PORTS[service], (
        f"compose service '{service}': HTTP_PORT={port}, but bekal.shared.cli.DEFAULT_PORTS says "
        f"{DEFAULT_PORTS[service]}"
    )
    assert env.get("HTTP_HOST") == "0.0.0.0", (
        f"compose service '{service}' must listen on HTTP_HOST=0.0.0.0 inside its container"
    )
    final = stages(dockerfile_path(service))[-1]
    assert exposed_ports(final) == {port}, (
        f"services/{service}/Dockerfile EXPOSEs {sorted(exposed_ports(final))}, compose uses {port}"
    )
    image_env = env_instructions(final)
    assert image_env.get("HTTP_PORT") == str(port), (
        f"services/{service}/Dockerfile sets ENV HTTP_PORT={image_env.get('HTTP_PORT')!r}, "
        f"expected {port}"
    )
    published = [str(p) for p in spec.get("ports", [])]
    assert any(p.split(":")[-1].split("/")[0] == str(port) for p in published), (
        f"compose service '{service}' does not publish its port {port} (ports: {published})"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_uses_an_idempotent_producer_on_the_compose_broker(service: str) -> None:
    env = environment(compose_service(service))
    value = env.get("KAFKA_ENABLE_IDEMPOTENCE")
    assert value is not None and parse_bool(value), (
        f"compose service '{service}' must set KAFKA_ENABLE_IDEMPOTENCE=true (Apache Kafka "
        f"supports it), has {value!r}"
    )
    assert env.get("KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092", (
        f"compose service '{service}' must reach the broker at kafka:9092, has "
        f"{env.get('KAFKA_BOOTSTRAP_SERVERS')!r}"
    )
    assert not env.get("KAFKA_NAMESPACE"), (
        f"compose service '{service}' sets KAFKA_NAMESPACE, so its topics would not be the ones "
        "kafka-init created"
    )


def test_kafka_runs_kraft_single_node_without_topic_auto_creation() -> None:
    kafka = compose_service("kafka")
    # The version the tests run (bekal.devtools.apache_kafka) is the one compose runs.
    assert kafka.get("image") == f"apache/kafka:{apache_kafka.VERSION}" == "apache/kafka:4.4.0", (
        f"kafka image is {kafka.get('image')!r}"
    )
    env = environment(kafka)
    roles = {r.strip() for r in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
    assert roles == {"broker", "controller"}, (
        f"kafka must be a combined KRaft broker+controller, KAFKA_PROCESS_ROLES={roles}"
    )
    assert env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").startswith(
        f"{env.get('KAFKA_NODE_ID')}@"
    ), "kafka: KAFKA_CONTROLLER_QUORUM_VOTERS must name this node (KAFKA_NODE_ID) as the voter"
    assert "PLAINTEXT://kafka:9092" in env.get("KAFKA_ADVERTISED_LISTENERS", ""), (
        "kafka must advertise PLAINTEXT://kafka:9092, the address the services use"
    )
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", (
        "kafka must not auto-create topics (KAFKA_AUTO_CREATE_TOPICS_ENABLE=false)"
    )
    assert "healthcheck" in kafka, "kafka needs a healthcheck: kafka-init waits for it"


def test_kafka_init_creates_exactly_the_catalogue_and_dead_letter_topics() -> None:
    init = compose_service("kafka-init")
    assert depends_on(init).get("kafka") == "service_healthy", (
        "kafka-init must wait for kafka to be healthy"
    )
    command = init.get("command") or []
    script = "\n".join(command) if isinstance(command, list) else str(command)
    # Shell variables holding the command (compose turns "$$" into "$").
    variables = dict(re.findall(r'^\s*(\w+)="([^"]*)"', script, re.M))
    created: list[str] = []
    for line in script.splitlines():
        if "--create" not in line:
            continue
        words = line.split()
        program = variables.get(words[0].lstrip("$"), line) if words[0].startswith("$") else line
        assert "kafka-topics.sh" in program, (
            f"kafka-init: topic creation must use kafka-topics.sh: {line.strip()}"
        )
        assert "--if-not-exists" in words, f"kafka-init: not idempotent (--if-not-exists): {line}"
        assert "--partitions" in words and words[words.index("--partitions") + 1] == "3", (
            f"kafka-init: every topic gets 3 partitions: {line.strip()}"
        )
        assert "--topic" in words, f"kafka-init: --create without --topic: {line.strip()}"
        name = words[words.index("--topic") + 1]
        created.append(name)
        replicas = int(words[words.index("--replication-factor") + 1])
        assert replicas == int(environment(compose_service("registry"))["KAFKA_REPLICATION_FACTOR"])
        configs = dict(
            words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "--config"
        )
        assert configs == topic_config(name, replicas), (
            f"kafka-init: {name} is created with {configs}, the catalogue says "
            f"{topic_config(name, replicas)} for {replicas} replica(s)"
        )
        # One node: min.insync.replicas capped at its one replica, or acks=all would never do.
        assert (replicas, configs["min.insync.replicas"]) == (1, "1"), line.strip()
        assert configs["unclean.leader.election.enable"] == "false", line.strip()
        expected_retention = str(30 * 24 * 3600 * 1000) if name.endswith(".dlq") else "-1"
        assert configs["retention.ms"] == expected_retention, line.strip()
    expected = {topic.name for topic in TOPICS} | {
        consumer_dead_letter_topic(group) for group in CONSUMER_GROUPS
    }
    duplicates = sorted({t for t in created if created.count(t) > 1})
    assert not duplicates, f"kafka-init creates {duplicates} more than once"
    assert set(created) == expected, (
        f"kafka-init topics differ from the catalogue + dead-letter topics: "
        f"missing {sorted(expected - set(created))}, unexpected {sorted(set(created) - expected)}"
    )


# --- databases -----------------------------------------------------------------------------


def init_script() -> tuple[dict[str, str], dict[str, str], set[str]]:
    """(role -> password, database -> owner, databases closed to PUBLIC) from the init SQL."""
    sql = POSTGRES_INIT.read_text(encoding="utf-8")
    sql = re.sub(r"--[^\n]*", "", sql)
    roles = dict(
        re.findall(r"CREATE\s+(?:ROLE|USER)\s+(\w+)\s+[^;]*?PASSWORD\s+'([^']*)'", sql, re.I)
    )
    databases = dict(re.findall(r"CREATE\s+DATABASE\s+(\w+)\s+[^;]*?OWNER\s*=?\s*(\w+)", sql, re.I))
    closed = set(
        re.findall(
            r"REVOKE\s+(?:ALL|CONNECT)\b[^;]*?ON\s+DATABASE\s+(\w+)\s+FROM\s+PUBLIC", sql, re.I
        )
    )
    return roles, databases, closed


def test_postgres_16_runs_the_init_script() -> None:
    postgres = compose_service("postgres")
    assert str(postgres.get("image", "")).startswith("postgres:16"), (
        f"postgres image must be PostgreSQL 16, is {postgres.get('image')!r}"
    )
    mounts = [str(v) for v in postgres.get("volumes", [])]
    relative = POSTGRES_INIT.relative_to(ROOT).as_posix()
    assert any(
        m.split(":")[0] in (relative, f"./{relative}") and ":/docker-entrypoint-initdb.d/" in m
        for m in mounts
    ), f"postgres must mount {relative} into /docker-entrypoint-initdb.d/ (volumes: {mounts})"
    assert "healthcheck" in postgres, "postgres needs a healthcheck: migrations wait for it"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_own_database_and_user(service: str) -> None:
    roles, databases, closed = init_script()
    assert service in roles, f"{POSTGRES_INIT.name} creates no login role '{service}'"
    assert databases.get(service) == service, (
        f"{POSTGRES_INIT.name} must create database '{service}' owned by role '{service}', "
        f"found owner {databases.get(service)!r}"
    )
    assert service in closed, (
        f"{POSTGRES_INIT.name} must revoke PUBLIC access to database '{service}' so other "
        "services cannot connect to it"
    )
    users = [
        (name, environment(spec)["DATABASE_URL"])
        for name, spec in compose()["services"].items()
        if built_service(spec) == service and "DATABASE_URL" in environment(spec)
    ]
    assert any(name == service for name, _ in users), (
        f"compose service '{service}' has no DATABASE_URL"
    )
    for name, raw in users:
        url = make_url(raw)
        where = f"compose service '{name}': DATABASE_URL {url!r}"
        assert url.drivername == "postgresql+asyncpg", f"{where} must use postgresql+asyncpg"
        assert (url.host, url.port) == ("postgres", 5432), f"{where} must point at postgres:5432"
        assert url.database == service, f"{where} must use database '{service}'"
        assert url.username == service, f"{where} must log in as '{service}'"
        assert url.password == roles[service], (
            f"{where}: the password differs from the one {POSTGRES_INIT.name} gives '{service}'"
        )


# --- start order, migrations, shared development key ----------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_service_starts_after_its_dependencies_and_migrations(service: str) -> None:
    spec = compose_service(service)
    deps = depends_on(spec)
    assert deps.get("postgres") == "service_healthy", (
        f"'{service}' must wait for a healthy postgres"
    )
    assert deps.get("kafka-init") == "service_completed_successfully", (
        f"'{service}' must start only after kafka-init created the topics"
    )
    env = environment(spec)
    job_name = f"{service}-migrate"
    services = compose()["services"]
    if job_name in services:
        job = services[job_name]
        assert built_service(job) == service, f"'{job_name}' must run the {service} image"
        assert job.get("command") == ["bekal", "migrate", service], (
            f"'{job_name}' must run ['bekal', 'migrate', '{service}'], runs {job.get('command')!r}"
        )
        assert environment(job).get("DATABASE_URL") == env.get("DATABASE_URL"), (
            f"'{job_name}' migrates another database than '{service}' uses"
        )
        assert depends_on(job).get("postgres") == "service_healthy", (
            f"'{job_name}' must wait for a healthy postgres"
        )
        assert deps.get(job_name) == "service_completed_successfully", (
            f"'{service}' must start only after '{job_name}' completed successfully"
        )
    else:
        run_on_start = env.get("RUN_MIGRATIONS_ON_START", "true")
        assert parse_bool(run_on_start), (
            f"'{service}' has no '{job_name}' job and RUN_MIGRATIONS_ON_START={run_on_start}: "
            "nothing migrates its database"
        )


def test_healthy_conditions_wait_on_services_that_have_a_health_check() -> None:
    services = compose()["services"]
    for name, spec in services.items():
        for dep, condition in depends_on(spec).items():
            assert dep in services, f"'{name}' depends on unknown service '{dep}'"
            if condition != "service_healthy":
                continue
            target = services[dep]
            own = target.get("healthcheck")
            image_service = built_service(target)
            has_check = (own is not None and not own.get("disable")) or (
                own is None
                and image_service is not None
                and any(k == "HEALTHCHECK" for k, _ in stages(dockerfile_path(image_service))[-1])
            )
            assert has_check, (
                f"'{name}' waits for '{dep}' to be healthy, but it has no health check"
            )


def test_services_share_one_development_key_and_run_as_development() -> None:
    key_files: set[str] = set()
    key_volumes: set[str] = set()
    for service in SERVICES:
        spec = compose_service(service)
        env = environment(spec)
        assert env.get("ENVIRONMENT") == "development", (
            f"'{service}': compose is a local stack with development tokens "
            "(ENVIRONMENT=development)"
        )
        key = env.get("AUTH_DEV_KEY_FILE")
        assert key, f"'{service}' does not set AUTH_DEV_KEY_FILE"
        key_files.add(key)
        key_dir = str(PurePosixPath(key).parent)
        mounts = [str(v).split(":") for v in spec.get("volumes", [])]
        named = [m[0] for m in mounts if len(m) >= 2 and m[1] == key_dir]
        assert named and named[0] in (compose().get("volumes") or {}), (
            f"'{service}': {key_dir} (the AUTH_DEV_KEY_FILE directory) must be a named volume"
        )
        key_volumes.add(named[0])
    assert len(key_files) == 1, f"the services use different development keys: {sorted(key_files)}"
    assert len(key_volumes) == 1, (
        f"the development key directory is not one shared volume: {sorted(key_volumes)}"
    )
    assert environment(compose_service("registry")).get("PSEUDONYM_SECRET"), (
        "registry must be given PSEUDONYM_SECRET"
    )


def test_kafka_ui_is_optional() -> None:
    ui = compose_service("kafka-ui")
    assert str(ui.get("image", "")).startswith("provectuslabs/kafka-ui"), "kafka-ui image"
    assert ui.get("profiles") == ["ui"], "kafka-ui must only start with --profile ui"


# --- Dockerfiles -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_builds_with_uv_in_a_separate_stage(service: str) -> None:
    path = dockerfile_path(service)
    all_stages = stages(path)
    assert len(all_stages) >= 2, f"services/{service}/Dockerfile must be multi-stage (>= 2 FROM)"
    builder_image, builder_name = from_image(all_stages[0][0][1])
    assert builder_image == BUILDER_IMAGE, (
        f"services/{service}/Dockerfile builder is {builder_image}"
    )
    builder_runs = " ".join(args for keyword, args in all_stages[0] if keyword == "RUN")
    assert "pip install" in builder_runs and "uv==0.13.9" in builder_runs, (
        f"services/{service}/Dockerfile: the builder must pip install uv==0.13.9"
    )
    sync = re.findall(r"uv sync[^&;]*", builder_runs)
    assert any(
        {"--frozen", "--no-dev"} <= set(s.split()) and f"--package bekal-{service}" in s
        for s in sync
    ), (
        f"services/{service}/Dockerfile must run "
        f"'uv sync --frozen --no-dev --package bekal-{service}'"
    )
    final = all_stages[-1]
    runtime_image, _ = from_image(final[0][1])
    assert runtime_image == RUNTIME_IMAGE, (
        f"services/{service}/Dockerfile runtime is {runtime_image}"
    )
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert any(
        f"--from={builder_name}" in args.split() and "/app/.venv" in args for args in copies
    ), f"services/{service}/Dockerfile: the final stage must copy /app/.venv from the builder"


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_final_stage_is_non_root_healthchecked_and_without_build_tools(
    service: str,
) -> None:
    final = stages(dockerfile_path(service))[-1]
    where = f"services/{service}/Dockerfile (final stage)"
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, f"{where} has no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"{where} runs as {users[-1]}"
    checks = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert checks and "CMD" in checks[-1] and "/healthz" in checks[-1], (
        f"{where} needs a HEALTHCHECK that asks /healthz"
    )
    for keyword, args in final[1:]:
        found = BUILD_TOOLS.search(args)
        if found:
            pytest.fail(f"{where}: build tool '{found.group(0)}' in {keyword} {args}")
    env = env_instructions(final)
    assert env.get("SERVICE_NAME") == service, (
        f"{where}: ENV SERVICE_NAME={env.get('SERVICE_NAME')}"
    )
    assert env.get("HTTP_HOST") == "0.0.0.0", f"{where}: ENV HTTP_HOST={env.get('HTTP_HOST')}"
    cmds = [args for keyword, args in final if keyword == "CMD"]
    assert cmds and json.loads(cmds[-1]) == ["bekal", "serve", service], (
        f'{where}: CMD must be ["bekal", "serve", "{service}"], is {cmds[-1] if cmds else None}'
    )


@pytest.mark.parametrize("service", [s for s in SERVICES if s != SERVICES[0]])
def test_dockerfiles_differ_only_in_service_name_and_port(service: str) -> None:
    base = SERVICES[0]
    base_lines = dockerfile_path(base).read_text(encoding="utf-8").splitlines()
    lines = dockerfile_path(service).read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(base_lines), (
        f"services/{service}/Dockerfile has {len(lines)} lines, services/{base}/Dockerfile "
        f"{len(base_lines)}: they must be the same file but for the service name and port"
    )
    for number, (ours, theirs) in enumerate(zip(base_lines, lines, strict=True), start=1):
        if ours == theirs:
            continue
        renamed = ours.replace(base, service).replace(
            str(DEFAULT_PORTS[base]), str(DEFAULT_PORTS[service])
        )
        assert renamed == theirs, (
            f"services/{service}/Dockerfile line {number} differs from services/{base}/Dockerfile "
            f"in more than the service name and port:\n  {base}: {ours}\n  {service}: {theirs}"
        )


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_copies_and_installs_no_development_tools(service: str) -> None:
    # bekal-devtools (tools/devtools: `bekal run`, the embedded broker, generators) is for a
    # developer's machine; tests/unit/test_runtime_without_devtools.py proves the service's own
    # installation does not pull it in, this that the image does not add it.
    where = f"services/{service}/Dockerfile"
    syncs: list[str] = []
    for stage in stages(dockerfile_path(service)):
        for keyword, args in stage:
            words = shlex.split(args)
            if keyword == "RUN":
                syncs += re.findall(r"uv sync[^&;]*", args)
            if keyword not in ("COPY", "ADD") or any(w.startswith("--from") for w in words):
                continue
            for source in [w for w in words if not w.startswith("--")][:-1]:
                parts = PurePosixPath(source).parts
                assert parts and parts[0] not in (".", "tools"), (
                    f"{where}: {keyword} {args} brings the development tools into the build"
                )
    assert syncs, f"{where} runs no uv sync"
    for sync in syncs:
        options = sync.split()
        assert not {"--all-packages", "--all-extras", "--all-groups"} & set(options), (
            f"{where}: '{sync}' installs more than bekal-{service}"
        )
        assert not {"--extra", "--group", "--only-group"} & set(options), (
            f"{where}: '{sync}' installs an extra or a group"
        )
        packages = [options[i + 1] for i, o in enumerate(options[:-1]) if o == "--package"]
        assert packages == [f"bekal-{service}"], (
            f"{where}: '{sync}' must install the package bekal-{service} alone"
        )
