"""The sample database a new user gets is valid under the project's own write policy."""

from sync_server.policy import open_store
from sync_server.sample import SAMPLE_DOCS, ensure_sample
from sync_server.settings import Settings


def test_sample_database_is_created_once_and_every_document_is_valid(tmp_path):
    server = open_store(Settings().replace("server", data_dir=str(tmp_path)))
    assert ensure_sample(server, "handbook-sample") is True
    assert ensure_sample(server, "handbook-sample") is False
    assert server.get("handbook-sample").doc_count == len(SAMPLE_DOCS)
    server.close()
