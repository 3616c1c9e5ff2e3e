"""The Apache Kafka launcher's cluster ids: as Kafka writes them, never read as an option."""

from __future__ import annotations

import base64
from pathlib import Path

from bekal.devtools.apache_kafka import ApacheKafka


def test_cluster_ids_are_kafka_uuids_that_never_start_with_a_dash(tmp_path: Path) -> None:
    cluster = ApacheKafka(nodes=1, directory=tmp_path)
    # About one random id in 64 starts with '-': 2,000 tries find one almost surely.
    ids = [cluster._cluster_id() for _ in range(2000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)
