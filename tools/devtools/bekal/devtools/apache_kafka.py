"""Apache Kafka on this machine (KRaft, combined broker and controller roles): tests, `make kafka`.

The jars come from Maven Central through ``tools/apache-kafka/pom.xml`` (pinned by version) into
``.tools/apache-kafka-<version>/libs``; nothing else is downloaded. A cluster is one node or
several on loopback ports, each a ``java kafka.Kafka`` process with its own storage, which
``kill``, ``pause`` and ``restart`` treat as a crash, a freeze and a supervisor's restart would.

    python -m bekal.devtools.apache_kafka install        # fetch the jars (Java 17 and Maven)
    python -m bekal.devtools.apache_kafka run --nodes 3  # start a cluster until Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bekal.devtools.broker import die_with_parent, free_port, port_open

VERSION = "4.4.0"
NAME = "apache-kafka"
STARTED = b"Kafka Server started"


class KafkaUnavailable(RuntimeError):
    """Java, Maven or the jars are missing; the message says how to get them."""


def checkout_root() -> Path:
    here = Path(__file__).resolve().parents[4]  # above tools/devtools/bekal/devtools/
    return here if (here / "tools" / "apache-kafka" / "pom.xml").is_file() else Path.cwd()


def libs_dir(root: Path | None = None) -> Path:
    return (root or checkout_root()) / ".tools" / f"{NAME}-{VERSION}" / "libs"


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaUnavailable(
            "Apache Kafka needs Java 17 or newer: install Debian's openjdk-17-jre-headless"
        )
    return java


def install(root: Path | None = None) -> Path:
    """The jars of Apache Kafka ``VERSION``, fetched with Maven the first time."""
    libs = libs_dir(root)
    if (libs / f"kafka_2.13-{VERSION}.jar").is_file():
        return libs
    _java()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaUnavailable(
            f"Apache Kafka {VERSION} is fetched with Maven: install Debian's maven, then "
            "run `make kafka-install`"
        )
    pom = (root or checkout_root()) / "tools" / "apache-kafka" / "pom.xml"
    partial = libs.with_name(libs.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    result = subprocess.run(
        [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={partial}",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise KafkaUnavailable(
            f"Maven could not fetch Apache Kafka {VERSION}: {result.stdout[-2000:]}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    return libs


@dataclass
class Node:
    node_id: int
    port: int
    controller_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    mark: int = 0  # where the log stood when the node was last launched

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class ApacheKafka:
    """A cluster of ``nodes`` combined-role nodes on 127.0.0.1; ``start()`` waits until all serve.

    Same face as the embedded broker (``bootstrap_servers``, ``name``, ``version``, ``stop()``)
    plus per-node faults. Producers on it run with idempotence on, as production does.
    """

    nodes: int = 1
    directory: Path | None = None
    heap: str = "512m"
    host: str = "127.0.0.1"
    name: str = NAME
    version: str = VERSION
    idempotent: bool = True
    members: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="apache-kafka-"))
        for i in range(1, self.nodes + 1):
            self.members.append(Node(i, free_port(), free_port(), self.directory / f"node-{i}"))

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{self.host}:{n.port}" for n in self.members)

    def node(self, node_id: int) -> Node:
        return self.members[node_id - 1]

    def _properties(self, node: Node) -> str:
        n = self.nodes
        voters = ",".join(f"{m.node_id}@{self.host}:{m.controller_port}" for m in self.members)
        return "\n".join(
            [
                "process.roles=broker,controller",
                f"node.id={node.node_id}",
                f"controller.quorum.voters={voters}",
                f"listeners=PLAINTEXT://{self.host}:{node.port},"
                f"CONTROLLER://{self.host}:{node.controller_port}",
                f"advertised.listeners=PLAINTEXT://{self.host}:{node.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={node.directory / 'data'}",
                # As in production: topics are declared, never created by a client's request.
                "auto.create.topics.enable=false",
                "unclean.leader.election.enable=false",
                f"default.replication.factor={n}",
                f"min.insync.replicas={min(2, n)}",
                f"offsets.topic.replication.factor={n}",
                "offsets.topic.num.partitions=10",
                f"transaction.state.log.replication.factor={n}",
                f"transaction.state.log.min.isr={min(2, n)}",
                "group.initial.rebalance.delay.ms=0",
                # Tests and a developer's run use session timeouts of a few seconds, so that a
                # killed consumer's partitions move on quickly; the default floor is 6 s.
                "group.min.session.timeout.ms=1000",
                "num.partitions=3",
                "",
            ]
        )

    def _format(self, libs: Path, cluster_id: str) -> None:
        for node in self.members:
            node.directory.mkdir(parents=True, exist_ok=True)
            config = node.directory / "server.properties"
            config.write_text(self._properties(node))
            result = subprocess.run(
                [
                    _java(),
                    "-cp",
                    f"{libs}/*",
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(config),
                    "--ignore-formatted",
                ],
                capture_output=True,
                text=True,
                env=self._env(),
            )
            if result.returncode != 0:
                raise RuntimeError(f"formatting node {node.node_id} failed: {result.stderr}")

    def _env(self) -> dict[str, str]:
        log4j = checkout_root() / "tools" / "apache-kafka" / "log4j2.properties"
        return {
            **os.environ,
            "KAFKA_LOG4J_OPTS": "",
            "JAVA_TOOL_OPTIONS": f"-Dlog4j2.configurationFile={log4j}",
        }

    def start(self, timeout: float = 90.0) -> None:
        libs = install()
        self._format(libs, self._cluster_id())
        for node in self.members:
            self._launch(node, libs)
        self._wait_started(self.members, timeout)

    def _cluster_id(self) -> str:
        """A random id as Kafka writes one (URL-safe base64 of 16 bytes). Like Kafka's own
        Uuid.randomUuid, never one that starts with '-': a command line would read it as an
        option (about one id in 64 did, and the storage tool refused to format)."""
        import base64

        while True:
            text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            if not text.startswith("-"):
                return text

    def _launch(self, node: Node, libs: Path) -> None:
        with open(node.log_file, "ab") as out:
            out.write(f"--- node {node.node_id} starting at {time.ctime()}\n".encode())
            out.flush()
            node.mark = node.log_file.stat().st_size
            node.process = subprocess.Popen(
                [
                    _java(),
                    f"-Xmx{self.heap}",
                    f"-Xms{self.heap}",
                    "-XX:+UseG1GC",
                    "-cp",
                    f"{libs}/*",
                    "kafka.Kafka",
                    str(node.directory / "server.properties"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGKILL),  # none outlives its starter
            )

    def _wait_started(self, nodes: list[Node], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(nodes)
        while waiting:
            for node in list(waiting):
                assert node.process is not None
                if node.process.poll() is not None:
                    raise RuntimeError(
                        f"Apache Kafka node {node.node_id} exited with code "
                        f"{node.process.returncode}; see {node.log_file}"
                    )
                with open(node.log_file, "rb") as log:
                    log.seek(node.mark)
                    if STARTED in log.read() and port_open(self.host, node.port):
                        waiting.remove(node)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"Apache Kafka nodes {[n.node_id for n in waiting]} did not start within "
                    f"{timeout:.0f} s; see {self.directory}"
                )
            time.sleep(0.2)

    # -- faults -------------------------------------------------------------------------------

    def kill(self, node_id: int) -> None:
        """SIGKILL: no shutdown, as a crash or an out-of-memory kill."""
        node = self.node(node_id)
        assert node.process is not None
        node.process.send_signal(signal.SIGCONT)
        node.process.kill()
        node.process.wait()

    def pause(self, node_id: int) -> None:
        """SIGSTOP: the node holds its connections but answers nothing."""
        process = self.node(node_id).process
        assert process is not None
        process.send_signal(signal.SIGSTOP)

    def resume(self, node_id: int) -> None:
        process = self.node(node_id).process
        assert process is not None
        process.send_signal(signal.SIGCONT)

    def terminate(self, node_id: int, timeout: float = 60.0) -> None:
        """SIGTERM: a controlled shutdown (leadership moves away first)."""
        node = self.node(node_id)
        assert node.process is not None
        node.process.terminate()
        try:
            node.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait()

    def restart(self, node_id: int, timeout: float = 90.0) -> None:
        """Start a stopped or killed node again on its own storage and wait until it serves."""
        node = self.node(node_id)
        if node.running:
            self.terminate(node_id)
        self._launch(node, libs_dir())
        self._wait_started([node], timeout)

    def stop(self) -> None:
        for node in self.members:
            if node.running:
                assert node.process is not None
                node.process.send_signal(signal.SIGCONT)
                node.process.terminate()
        for node in self.members:
            if node.process is not None:
                try:
                    node.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bekal.devtools.apache_kafka")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help=f"fetch Apache Kafka {VERSION} with Maven into .tools/")
    run = sub.add_parser("run", help="start a local cluster until Ctrl-C")
    run.add_argument("--nodes", type=int, default=1, choices=(1, 3))
    run.add_argument("--directory", type=Path, default=Path("var/apache-kafka"))
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(install())
            return 0
        shutil.rmtree(args.directory, ignore_errors=True)
        cluster = ApacheKafka(nodes=args.nodes, directory=args.directory.resolve())
        cluster.start()
    except KafkaUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    print(
        f"Apache Kafka {VERSION}, {args.nodes} node(s): "
        f"KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap_servers} KAFKA_ENABLE_IDEMPOTENCE=true"
        " (Ctrl-C stops)",
        flush=True,
    )
    try:
        while all(n.running for n in cluster.members):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
