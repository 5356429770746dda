"""graph_guard: who may command the arms, from the ROS graph (pure functions; the DDS test is in
test_executor_node.py)."""

from rtc_controller.app.graph_guard import (
    CONFIRMATIONS,
    UNKNOWN_NODE,
    ConflictLatch,
    chunk_source_problem,
    graph_conflicts,
    qualified,
    sender_problem,
)

SRC = "/inference_node"
UNKNOWN = qualified("_NODE_NAMESPACE_UNKNOWN_", UNKNOWN_NODE)


def test_chunks_only_from_the_configured_source():
    assert qualified("/", "inference_node") == SRC and qualified("/rig", "x") == "/rig/x"
    assert chunk_source_problem([SRC], SRC) is None
    assert chunk_source_problem([], SRC) is None  # the publisher left after sending
    assert chunk_source_problem([UNKNOWN], SRC) is None, "the only publisher, not attributed yet (~0.1 s)"
    assert "/rogue" in chunk_source_problem([SRC, "/rogue"], SRC)
    assert "/rogue" in chunk_source_problem(["/rogue"], SRC)
    assert UNKNOWN in chunk_source_problem([SRC, UNKNOWN], SRC), "a second one, named or not"
    assert "2 chunk publishers named" in chunk_source_problem([SRC, SRC], SRC)


def test_the_sender_gid_must_be_a_trusted_endpoint():
    ours, theirs = [1] * 16, [2] * 16
    assert sender_problem(bytes(ours), [(SRC, ours)], SRC) is None
    assert sender_problem(bytes(ours + [0] * 8), [(SRC, ours)], SRC) is None  # 24-byte GIDs: the prefix
    assert sender_problem(bytes(theirs), [(SRC, ours)], SRC) is not None
    assert sender_problem(bytes(ours), [(UNKNOWN, ours)], SRC) is None
    assert sender_problem(bytes(theirs), [(SRC, ours), (UNKNOWN, theirs)], SRC) is not None


def test_conflicts_are_confirmed_then_latched_until_resume():
    clean = graph_conflicts(chunk_publishers=[SRC], state_publishers=["/executor_node"],
                            node_names=["/executor_node", SRC, "/rtc_live_view"],
                            executor="/executor_node", inference=SRC)  # fmt: skip
    assert clean == []
    rogue = graph_conflicts(chunk_publishers=[SRC, "/rogue"], state_publishers=["/executor_node", "/executor_node"],
                            node_names=["/executor_node", "/executor_node", SRC, SRC],
                            executor="/executor_node", inference=SRC)  # fmt: skip
    assert len(rogue) == 4 and "second executor node" in rogue[2] and "second inference node" in rogue[3]
    latch = ConflictLatch()
    assert [latch.update(rogue) for _ in range(CONFIRMATIONS)][-1] == "raised"
    assert latch.resume_refusal().startswith("graph conflict")
    assert [latch.update(clean) for _ in range(CONFIRMATIONS)][-1] == "cleared"
    assert latch.needs_resume and latch.resume_refusal() is None and not latch.needs_resume
    assert latch.update(rogue) is None, "one sighting is not a conflict (discovery settles)"
    assert latch.update(clean) is None
